/// <reference lib="dom" />
// (page.evaluate callbacks run in the browser.)
/**
 * A real browser for the dashboard tests: Debian's Chromium driven by playwright-core (Playwright's
 * own browser downloads do not work here). No Chromium means the test file FAILS with this message:
 * a missing browser must never turn into a silently skipped suite. `.ci/run` installs it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { AxeBuilder } from '@axe-core/playwright';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium was not found at ${CHROMIUM_PATH}. The dashboard's browser tests need it: run "apt-get install -y chromium" (Debian), or set CHROMIUM_PATH.`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export const DESKTOP = { width: 1280, height: 800 };
export const MOBILE = { width: 390, height: 844 };

export async function newContext(browser: Browser, baseURL: string, viewport = DESKTOP): Promise<BrowserContext> {
  const context = await browser.newContext({ baseURL, viewport });
  context.setDefaultTimeout(5000);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  return context;
}

/** Serious or critical axe violations on the current page, as readable lines (empty = none). */
export async function seriousViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`);
}

export const SCREENSHOT_DIR = path.resolve(import.meta.dirname, '../../docs/screenshots');

/** Screenshots of the page at desktop and narrow-mobile widths: docs/screenshots/<name>-{desktop,mobile}.png. */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const original = page.viewportSize() ?? DESKTOP;
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(MOBILE);
  // Let the narrow layout settle before measuring the full page.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > MOBILE.width) throw new Error(`${name}: the page is ${wide}px wide at ${MOBILE.width}px (horizontal scrolling)`);
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}-mobile.png`), fullPage: true });
  await page.setViewportSize(original);
}

/** Presses Tab until the focused element matches (keyboard-only navigation); fails after `max` presses. */
export async function tabTo(page: Page, matches: (el: { tag: string; text: string; id: string; name: string; value: string }) => boolean, max = 60): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const el = await page.evaluate(() => {
      const a = document.activeElement as HTMLInputElement | null;
      return { tag: a?.tagName.toLowerCase() ?? '', text: (a?.textContent ?? '').trim(), id: a?.id ?? '', name: a?.getAttribute('name') ?? '', value: a?.value ?? '' };
    });
    if (matches(el)) return;
  }
  throw new Error('Tab never reached the wanted element');
}

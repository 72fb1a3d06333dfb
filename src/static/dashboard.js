// Flowgate dashboard: progressive enhancement only. Every page works without this file.
// Copy buttons: copy the text of the element named by data-copy, and say so for screen readers.
document.addEventListener('click', async (event) => {
  const button = event.target instanceof Element ? event.target.closest('button[data-copy]') : null;
  if (!button) return;
  const source = document.getElementById(button.getAttribute('data-copy'));
  const status = document.getElementById('copy-status');
  if (!source) return;
  const text = source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
    if (status) status.textContent = 'Copied to the clipboard.';
  } catch {
    // No clipboard access: select the text so Ctrl+C / Cmd+C copies it.
    const range = document.createRange();
    range.selectNodeContents(source);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    if (status) status.textContent = 'Press Ctrl+C (or Cmd+C) to copy the selected text.';
  }
});

// Choosing a scope checkbox switches the permission level to "Choose scopes".
document.addEventListener('change', (event) => {
  const t = event.target;
  if (t instanceof HTMLInputElement && t.name === 'scopes' && t.checked) {
    const custom = document.getElementById('perm-custom');
    if (custom) custom.checked = true;
  }
  if (t instanceof HTMLSelectElement && t.id === 'org-switch' && t.form) t.form.submit();
});

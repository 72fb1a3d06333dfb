// Rate limits: the limiter, policies, and the pieces the HTTP app mounts.
export { RateLimitService, subjectKey, type Subject, type Checked } from './service.js';
export { rateLimitDecorator } from './introspection.js';
export { rateLimitHeaders, limitedMessage } from './headers.js';
export { categoryFor, CATEGORIES } from './categories.js';
export { parseLimits, InvalidLimitsError, ALL } from './policies.js';
export type { Decision, Limiter, RateLimit } from './types.js';

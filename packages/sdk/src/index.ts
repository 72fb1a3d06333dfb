// @flowgate/sdk: the framework-neutral core. Adapters: @flowgate/sdk/koa, /express and /fetch.
export { Flowgate, credentialNoun, scopeError, workflowError, organizationError } from './core.js';
export type { FlowgateIdentity, FlowgateOptions, AuthRequest, AuthOutcome } from './core.js';
export { FlowgateError, flowgateErrors, errorBody } from './errors.js';
export type { ErrorBody, CredentialNoun } from './errors.js';
export { CredentialParseError, parseCredential } from './credentials.js';
export type { CredentialRequest, CredentialSource, PresentedCredential } from './credentials.js';
export { IntrospectionClient, IntrospectionFailure } from './introspection-client.js';
export type {
  ActiveCredential,
  InactiveCredential,
  InactiveReason,
  IntrospectionResult,
  IntrospectionClientOptions,
  RateLimitState,
  SdkLogger,
} from './introspection-client.js';
export { rateLimitHeaders, rateLimitMessage, rateLimitedError, RateLimitChecker } from './ratelimit.js';
export type { RateLimitCheckOptions, RateLimitOutcome } from './ratelimit.js';
export { verifyWebhook, verifyFlowgateSignature, webhookVerifier, MemoryReplayStore } from './webhooks.js';
export type { VerifiedWebhook, VerifyOptions, ReplayStore, WebhookReceiverOptions, HeaderSource } from './webhooks.js';

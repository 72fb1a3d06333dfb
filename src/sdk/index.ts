// Flowgate's SDK for workflow services (resource servers). Stands alone: it imports nothing from
// Flowgate but the shared credential parser, so it could be published as its own package.
export { flowgateAuth, requireScope, requireWorkflowAccess, checkWorkflowAccess, checkOrganization } from './middleware.js';
export type { FlowgateAuthOptions, FlowgateIdentity } from './middleware.js';
export { IntrospectionClient } from './introspection-client.js';
export type { ActiveCredential, IntrospectionResult, IntrospectionClientOptions } from './introspection-client.js';
export { SdkError, sdkErrors, sendSdkError } from './errors.js';
export { parseCredential } from '../http/credentials.js';
export { verifyWebhook, verifyFlowgateSignature, webhookReceiver, MemoryReplayStore } from './webhooks.js';
export { ipRateLimit } from './ip-rate-limit.js';
export type { IpRateLimitOptions } from './ip-rate-limit.js';
export type { VerifiedWebhook, VerifyOptions, ReplayStore, WebhookReceiverOptions } from './webhooks.js';

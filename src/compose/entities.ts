// Every entity and migration, in one list for the data source (composition, like app.ts).
import { AuditAppendOnly1732700000000 } from '../../migrations/1732700000000-audit-append-only.js';
import { Init1732300000000 } from '../../migrations/1732300000000-init.js';
import { ApiKeys1732400000000 } from '../../migrations/1732400000000-api-keys.js';
import { Events1732500000000 } from '../../migrations/1732500000000-events.js';
import { Dashboard1732600000000 } from '../../migrations/1732600000000-dashboard.js';
import { PlatformClients1732800000000 } from '../../migrations/1732800000000-platform-clients.js';
import { EmailVerified1732900000000 } from '../../migrations/1732900000000-email-verified.js';
import { InvitationTeams1733100000000 } from '../../migrations/1733100000000-invitation-teams.js';
import { InvitationEntity } from '../accounts/invitations.js';
import { MembershipEntity, OrganizationEntity, TeamEntity, UserEntity } from '../accounts/entities.js';
import { AuditEventEntity } from '../audit/entity.js';
import { ApiKeyEntity } from '../apikeys/entities.js';
import { OAuthClientEntity, OAuthConsentEntity, OidcArtifactEntity } from '../oauth/entities.js';

export const entities = [
  OrganizationEntity,
  TeamEntity,
  UserEntity,
  MembershipEntity,
  OAuthClientEntity,
  OAuthConsentEntity,
  OidcArtifactEntity,
  AuditEventEntity,
  ApiKeyEntity,
  InvitationEntity,
];

export const migrations = [
  Init1732300000000,
  ApiKeys1732400000000,
  Events1732500000000,
  Dashboard1732600000000,
  AuditAppendOnly1732700000000,
  PlatformClients1732800000000,
  EmailVerified1732900000000,
  InvitationTeams1733100000000,
];

import type {
  CreatedExperiment,
  Deletion,
  ExperimentDetails,
  ExperimentStatus,
} from "../experiments/index.js";
import type { Removal } from "../lab/garbage.js";
import type { SecretsConfig } from "../secrets/index.js";
import type { ServerStatus, ServiceStatus } from "../services/index.js";
import type { Lookup } from "../state/index.js";
import type { AuditEntry } from "./identity.js";
import type { EventSink, Requests } from "./protocol.js";
import type { Scope } from "./wire.js";

// What the answers are made of, for clients, which import nothing of experiments/ or services/.
export type { CreatedExperiment, Deletion, ExperimentDetails, ExperimentStatus, ServerStatus, ServiceStatus };

/**
 * Everything a client asks of a laboratory. Requests and results are plain data (see
 * protocol.ts); what a long operation does meanwhile arrives as events. The embedded laboratory
 * implements it in this process; remote ones carry the same requests over HTTPS or SSH.
 */
/** What `secrets init` did: the identity's recipient, whether it is new, and the /secrets state for it. */
export interface SecretsInitialised {
  recipient: string;
  created: boolean;
  state: { [key: string]: SecretsConfig };
}

/** The laboratory's state.json and the store it names; all null when there is none. */
export interface StateReport {
  file: string | null;
  provider: string | null;
  service: string | null;
  reachable: true;
  /** State files apps could read (see state/permissions.ts); absent from an older laboratory. */
  warnings?: string[];
}

/** A token as a laboratory lists it: everything but the token itself. */
export interface TokenInfo {
  name: string;
  scope: Scope;
  /** The apps it may touch; empty: every app. */
  apps: string[];
  /** ISO 8601, as the ones below; null where there is none. */
  created: string;
  expires: string | null;
  lastUsed: string | null;
  revoked: string | null;
}

/** A token just made: the only time its plaintext exists outside its holder's hands. */
export interface CreatedToken {
  name: string;
  token: string;
  scope: Scope;
  apps: string[];
  expires: string | null;
}

export interface Laboratory {
  /** Creates an experiment, or updates the branch's experiment of that name if it exists (`existed`). */
  create(request: Requests["create"], events?: EventSink): Promise<CreatedExperiment>;
  update(request: Requests["update"], events?: EventSink): Promise<ExperimentStatus>;
  /** The branch heads (branch → commit) of the app's repository on the laboratory. */
  codeHave(request: Requests["codeHave"]): Promise<{ heads: Record<string, string> }>;
  /** Takes a bundle of the client's commits into the app's repository; the heads it then has. */
  codePush(request: Requests["codePush"]): Promise<{ heads: Record<string, string> }>;
  /** Deletes an experiment; one that does not exist is nothing to delete, which the answer's note says. */
  delete(request: Requests["delete"], events?: EventSink): Promise<Deletion>;
  list(request: Requests["list"]): Promise<ExperimentStatus[]>;
  /** The experiment in full, or null when there is none. */
  status(request: Requests["status"]): Promise<ExperimentDetails | null>;
  /** The app's (or a service's) output as stdout events; with `follow`, until `signal` aborts. */
  logs(request: Requests["logs"], events: EventSink, signal?: AbortSignal): Promise<void>;
  /**
   * Runs a command where the app runs, its output as events; resolves to its exit code. When
   * `signal` aborts, the command and what it started are stopped.
   */
  exec(request: Requests["exec"], events: EventSink, signal?: AbortSignal): Promise<{ exitCode: number }>;
  servicesUp(request: Requests["servicesUp"]): Promise<ServiceStatus[]>;
  servicesDown(request: Requests["servicesDown"]): Promise<{ removed: string[] }>;
  servicesList(request: Requests["servicesList"]): Promise<ServiceStatus[]>;
  servicesEnv(request: Requests["servicesEnv"]): Promise<Record<string, string>>;
  stateGet(request: Requests["stateGet"]): Promise<Lookup>;
  /** Where the laboratory's state is kept, once it has been reached. */
  stateCheck(request: Requests["stateCheck"]): Promise<StateReport>;
  /** Sets (or removes) a key of the laboratory's state, when labtest can write its store. */
  stateSet(request: Requests["stateSet"]): Promise<void>;
  stateUnset(request: Requests["stateUnset"]): Promise<{ removed: boolean }>;
  /** Creates the laboratory's age identity unless it has one; what to put at /secrets for it. */
  secretsInit(request: Requests["secretsInit"]): Promise<SecretsInitialised>;
  /** The laboratory's /secrets: what a client encrypts `ENC[…]` values with, on its side. */
  secretsRecipients(request: Requests["secretsRecipients"]): Promise<SecretsConfig>;
  gc(request: Requests["gc"]): Promise<Removal[]>;
  servers(request: Requests["servers"]): Promise<ServerStatus[]>;
  /** Stops or removes one server, or every one no experiment uses; resolves to their ids. */
  retireServers(request: Requests["retireServers"]): Promise<string[]>;
  /** Makes a token; the answer is the only place its plaintext ever is. */
  tokenCreate(request: Requests["tokenCreate"]): Promise<CreatedToken>;
  tokenList(request: Requests["tokenList"]): Promise<TokenInfo[]>;
  tokenRevoke(request: Requests["tokenRevoke"]): Promise<{ revoked: string }>;
  /** The audit log, oldest first. */
  audit(request: Requests["audit"]): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

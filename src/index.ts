/** The labtest library API: everything the CLI does, callable from TypeScript. */
export { CANDIDATE_FILES, findConfig } from "./config/discover.js";
export type { ConfigDocument, ConfigFormat } from "./config/formats.js";
export type { LaboratoryAddress } from "./config/host.js";
export { parseLaboratoryAddress } from "./config/host.js";
export {
  appName,
  databaseName,
  envPrefix,
  experimentName,
  hostLabel,
  resourceName,
  roleName,
  shortHash,
} from "./config/names.js";
export { expandPattern, normalizePattern, type PatternValues } from "./config/patterns.js";
export type {
  ExperimentConfig,
  LoadedConfig,
  LoadOptions,
  ServiceConfig,
  ValueSource,
} from "./config/resolve.js";
export { loadConfig, serviceConfig } from "./config/resolve.js";
export { PROVIDERS, PROVISION_TYPES, RUNTIMES, SERVICE_KINDS } from "./config/schema.js";
export { ConfigError, LabtestError, type Problem, UsageError } from "./errors.js";
export {
  type ExecOutput,
  ExperimentError,
  type ExperimentRow,
  type ExperimentStatus,
  Experiments,
  type ExperimentsOptions,
  type Progress,
} from "./experiments/index.js";
export { labtestHome } from "./lab/home.js";
export { LABELS } from "./lab/labels.js";
export {
  initAgeIdentity,
  MASK,
  maskSecrets,
  SecretError,
  type SecretProvider,
  Secrets,
  type SecretsOptions,
} from "./secrets/index.js";
export {
  type Connection,
  type Endpoint,
  type ExperimentServices,
  experimentServices,
  ProvisionError,
  type ProvisionOptions,
  type ServiceRecord,
  type ServiceStatus,
  Services,
  serviceEnvironment,
  type Tenant,
} from "./services/index.js";
export {
  candidateKeys,
  type Lookup,
  lookup,
  type MergeStrategy,
  type OpenedState,
  openState,
  StateError,
  type StateOptions,
  type StateStore,
  serviceDefaults,
  serviceDefaultsKey,
  type WritableStateStore,
} from "./state/index.js";

/** What a laboratory answers with. */
export type { ExperimentDetails, ExperimentStatus } from "../experiments/index.js";
export type { ServerStatus, ServiceStatus } from "../services/index.js";
export { EmbeddedLaboratory, type EmbeddedOptions } from "./embedded.js";
export { HttpsLaboratory } from "./https.js";
export type { Laboratory, SecretsInitialised, StateReport } from "./laboratory.js";
export { openLaboratory } from "./open.js";
export {
  type EventSink,
  type LaboratoryEvent,
  MAX_DURATION_SECONDS,
  PROTOCOL_VERSION,
  type Project,
  parseRequest,
  type Requests,
} from "./protocol.js";
export { SshLaboratory } from "./ssh.js";

import type { LaboratoryAddress } from "../config/host.js";
import { UsageError } from "../errors.js";
import { EmbeddedLaboratory, type EmbeddedOptions } from "./embedded.js";
import type { Laboratory } from "./laboratory.js";

/** What a laboratory answers with. */
export type { ExperimentDetails, ExperimentStatus } from "../experiments/index.js";
export type { ServerStatus, ServiceStatus } from "../services/index.js";
export { EmbeddedLaboratory, type EmbeddedOptions } from "./embedded.js";
export type { Laboratory, SecretsInitialised, StateReport } from "./laboratory.js";
export {
  type EventSink,
  type LaboratoryEvent,
  PROTOCOL_VERSION,
  type Project,
  parseRequest,
  type Requests,
} from "./protocol.js";

/**
 * The laboratory a configuration's `host` names. Only the embedded one exists yet: a remote
 * address is refused plainly rather than served by this machine, which would put a team's
 * experiment on a developer's laptop.
 */
export function openLaboratory(address: LaboratoryAddress, options: EmbeddedOptions): Laboratory {
  if (address.kind === "local") return new EmbeddedLaboratory(options);
  const where = address.kind === "ssh" ? `ssh://${address.host}` : address.url;
  throw new UsageError(`the laboratory at ${where} cannot be reached yet`, [
    {
      where: "labtest.host",
      what: `labtest does not yet speak to remote laboratories over ${address.kind === "ssh" ? "SSH" : "HTTPS"}`,
      fix: "run labtest on the laboratory itself (host: local), or leave host out",
    },
  ]);
}

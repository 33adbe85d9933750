import type { LaboratoryAddress } from "../config/host.js";
import { UsageError } from "../errors.js";
import { laboratoryCredential } from "./credentials.js";
import { EmbeddedLaboratory, type EmbeddedOptions } from "./embedded.js";
import { HttpsLaboratory } from "./https.js";
import type { Laboratory } from "./laboratory.js";

/** What a laboratory answers with. */
export type { ExperimentDetails, ExperimentStatus } from "../experiments/index.js";
export type { ServerStatus, ServiceStatus } from "../services/index.js";
export { EmbeddedLaboratory, type EmbeddedOptions } from "./embedded.js";
export { HttpsLaboratory } from "./https.js";
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
 * The laboratory a configuration's `host` names: this machine's, or one across HTTPS with the
 * credential of `labtest login` (or LABTEST_TOKEN). SSH is refused plainly rather than served by
 * this machine, which would put a team's experiment on a developer's laptop.
 */
export async function openLaboratory(
  address: LaboratoryAddress,
  options: EmbeddedOptions,
): Promise<Laboratory> {
  if (address.kind === "local") return new EmbeddedLaboratory(options);
  if (address.kind === "https")
    return new HttpsLaboratory(await laboratoryCredential(address.url, options.env));
  throw new UsageError(`the laboratory at ssh://${address.host} cannot be reached yet`, [
    {
      where: "labtest.host",
      what: "labtest does not yet speak to remote laboratories over SSH",
      fix: "use the laboratory's HTTPS address (host: https://…, after labtest login), run labtest on the laboratory itself (host: local), or leave host out",
    },
  ]);
}

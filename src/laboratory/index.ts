import type { LaboratoryAddress } from "../config/host.js";
import { laboratoryCredential } from "./credentials.js";
import { EmbeddedLaboratory, type EmbeddedOptions } from "./embedded.js";
import { HttpsLaboratory } from "./https.js";
import type { Laboratory } from "./laboratory.js";
import { SshLaboratory } from "./ssh.js";

/** What a laboratory answers with. */
export type { ExperimentDetails, ExperimentStatus } from "../experiments/index.js";
export type { ServerStatus, ServiceStatus } from "../services/index.js";
export { EmbeddedLaboratory, type EmbeddedOptions } from "./embedded.js";
export { HttpsLaboratory } from "./https.js";
export type { Laboratory, SecretsInitialised, StateReport } from "./laboratory.js";
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

/**
 * The laboratory a configuration's `host` names: this machine's, one across HTTPS with the
 * credential of `labtest login` (or LABTEST_TOKEN), or one across SSH through the user's own
 * ssh — whose ~/.ssh/config always applies, so LabTest's `use_ssh_config` needs nothing more.
 */
export async function openLaboratory(
  address: LaboratoryAddress,
  options: EmbeddedOptions,
): Promise<Laboratory> {
  if (address.kind === "local") return new EmbeddedLaboratory(options);
  if (address.kind === "https")
    return new HttpsLaboratory(await laboratoryCredential(address.url, options.env));
  // ssh asks at the terminal (a passphrase, a host key to confirm) only when there is one.
  return new SshLaboratory(address, { env: options.env, interactive: Boolean(process.stdin.isTTY) });
}

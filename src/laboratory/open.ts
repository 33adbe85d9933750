import type { LaboratoryAddress } from "../config/host.js";
import type { EmbeddedOptions } from "./embedded.js";
import type { Laboratory } from "./laboratory.js";

/**
 * The laboratory a configuration's `host` names: this machine's, one across HTTPS with the
 * credential of `labtest login` (or LABTEST_TOKEN), or one across SSH through the user's own
 * ssh — whose ~/.ssh/config always applies, so LabTest's `use_ssh_config` needs nothing more.
 * Each transport loads when chosen: the embedded one brings the experiments, the services and
 * Docker's client, which a command sent to a remote laboratory never runs.
 */
export async function openLaboratory(
  address: LaboratoryAddress,
  options: EmbeddedOptions,
): Promise<Laboratory> {
  if (address.kind === "local") return new (await import("./embedded.js")).EmbeddedLaboratory(options);
  if (address.kind === "https") {
    const [{ laboratoryCredential }, { HttpsLaboratory }] = await Promise.all([
      import("./credentials.js"),
      import("./https.js"),
    ]);
    return new HttpsLaboratory(await laboratoryCredential(address.url, options.env));
  }
  // ssh asks at the terminal (a passphrase, a host key to confirm) only when there is one.
  const { SshLaboratory } = await import("./ssh.js");
  return new SshLaboratory(address, { env: options.env, interactive: Boolean(process.stdin.isTTY) });
}

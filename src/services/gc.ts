import type { Sweep } from "../lab/garbage.js";
import type { Provisioner } from "./provision.js";
import { ownerName, serviceLock } from "./records.js";

/**
 * Cleans, through `sweep`, what crashes left: services stuck half-created (their command is
 * gone: its lock is not held), dedicated servers no service uses, unrecorded objects and the
 * lock directories of killed commands past the grace period.
 */
export async function collectGarbage(provisioner: Provisioner, sweep: Sweep): Promise<void> {
  const { records, servers, registry } = provisioner;
  for (const record of await records.services()) {
    if (record.status !== "creating" || (await registry.held(serviceLock(record.owner)))) continue;
    await sweep.remove(`service ${ownerName(record.owner)}`, "left half-created", async () => {
      const removed = await provisioner.down(record.owner, (r) => r.status === "creating");
      return removed !== undefined;
    });
  }
  // Servers are listed before services: a server is recorded only after its service is.
  const recorded = await records.servers();
  const services = await records.services();
  const used = new Set(services.map((r) => r.server));
  for (const server of recorded) {
    if (server.provisionType !== "independent" || used.has(server.id)) continue;
    await sweep.remove(`server ${server.id}`, "no service uses it", () =>
      registry.withLock(`server-${server.id}`, () => servers.destroy(server)),
    );
  }
  const known = new Set(
    recorded.filter((s) => s.provisionType === "communal" || used.has(s.id)).map((s) => s.id),
  );
  const experiments = new Set(services.map((r) => `${r.owner.app}/${r.owner.experiment}`));
  await servers.sweep(known, experiments, sweep);
  await registry.sweepLocks(sweep);
}

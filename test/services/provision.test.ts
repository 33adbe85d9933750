import { access } from "node:fs/promises";
import { describe, expect, test } from "vitest";
import { LABELS } from "../../src/lab/labels.js";
import type { ServerRecord } from "../../src/services/providers/provider.js";
import { type ClientKind, writeAndRead } from "../support/clients.js";
import { docker } from "../support/docker.js";
import { serviceConfig, testLaboratory } from "../support/laboratory.js";

const KINDS: ClientKind[] = ["postgresql", "mariadb", "redis", "memcached"];

async function processAlive(pid: number): Promise<boolean> {
  return access(`/proc/${pid}`).then(
    () => true,
    () => false,
  );
}

describe.each(["docker", "local"] as const)("provider %s", (provider) => {
  describe.each(["communal", "independent"] as const)("%s", (provisionType) => {
    test.each(KINDS)(
      "%s: up, a real client writes and reads with the app's variables, down removes what up made",
      async (kind) => {
        const lab = await testLaboratory();
        const request = {
          app: "shop",
          experiment: "feature-a",
          services: { store: serviceConfig(provider, kind, provisionType) },
        };
        const [status] = await lab.services.up(request);
        expect(status).toMatchObject({ name: "store", kind, provider, provisionType, status: "ready" });

        const appEnv = await lab.services.environment("shop", "feature-a");
        if (provider === "docker") {
          // Apps on the experiment network use the container's name (communal) or the service alias.
          expect(appEnv.STORE_HOST).toBe(provisionType === "independent" ? "store" : status?.server);
        } else {
          expect(appEnv.STORE_HOST).toBe("127.0.0.1");
        }
        // The test runs on the laboratory host: it uses the host-reachable variant of the same variables.
        const env = await lab.services.environment("shop", "feature-a", {}, { hostReachable: true });
        expect(await writeAndRead(kind, env, "STORE", "hello")).toBe("hello");

        const again = await lab.services.environment("shop", "feature-a", {}, { hostReachable: true });
        expect(again).toEqual(env);

        const server = (await lab.registry.read<ServerRecord>(
          "servers",
          status?.server ?? "",
        )) as ServerRecord;
        expect(await lab.services.down("shop", "feature-a")).toEqual(["store"]);
        expect(await lab.services.list()).toEqual([]);
        const serverGone = provisionType === "independent";
        if (provider === "docker") {
          const containers = await docker.listContainers({
            all: true,
            filters: { label: [`${LABELS.server}=${server.id}`] },
          });
          expect(containers.length).toBe(serverGone ? 0 : 1);
          const { Volumes } = await docker.listVolumes({
            filters: { label: [`${LABELS.server}=${server.id}`] },
          });
          expect((Volumes ?? []).length).toBe(serverGone || kind === "memcached" ? 0 : 1);
        } else {
          expect(await processAlive(Number(server.details.pid))).toBe(!serverGone);
          expect(
            await access(String(server.details.dataDirectory)).then(
              () => true,
              () => false,
            ),
          ).toBe(!serverGone);
        }
        if (kind !== "memcached") {
          // The tenant's credentials no longer open anything.
          await expect(writeAndRead(kind, env, "STORE", "again")).rejects.toThrow();
        }
      },
    );
  });
});

import { expect, test } from "vitest";
import { SecretError } from "../../src/secrets/index.js";
import { docker } from "../support/docker.js";
import { ageSecrets, serviceConfig, testLaboratory } from "../support/laboratory.js";

test("ENC values in a service's options.environment reach its server; a damaged one stops everything first", async () => {
  const lab = await testLaboratory();
  const secrets = await ageSecrets(lab);
  const value = await secrets.encrypt("server-s3cret");
  const request = (environment: Record<string, string>) => ({
    app: "vault",
    experiment: "main",
    services: {
      cache: serviceConfig("docker", "redis", "independent", { options: { environment } }),
      db: serviceConfig("docker", "postgresql", "independent"),
    },
  });

  const damaged = await lab.services
    .up(request({ TOKEN: `${value.slice(0, 60)}x${value.slice(61)}` }))
    .catch((e: unknown) => e);
  expect(damaged).toBeInstanceOf(SecretError);
  expect((damaged as Error).message).toMatch(
    /cannot decrypt labtest\.services\.cache\.options\.environment\.TOKEN/,
  );
  expect(await lab.services.list("vault", "main")).toEqual([]);
  expect(
    await docker.listContainers({ all: true, filters: { label: [`labtest.laboratory=${lab.registry.id}`] } }),
  ).toEqual([]);

  const [cache] = await lab.services.up(request({ TOKEN: `prefix-${value}` }), ["cache"]);
  const [container] = await docker.listContainers({
    filters: { label: [`labtest.laboratory=${lab.registry.id}`, "labtest.service=cache"] },
  });
  const info = await docker.getContainer(container?.Id ?? "").inspect();
  expect(info.Config.Env).toContain("TOKEN=prefix-server-s3cret");
  expect(cache?.status).toBe("ready");
});

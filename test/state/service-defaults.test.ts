import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { openState, serviceDefaults } from "../../src/state/index.js";
import { scratchDir } from "../support/project.js";

describe("service defaults from state", () => {
  it("merges /services/<provider>/<service>/<app> with its fallbacks, per-app fields winning", async () => {
    const dir = await scratchDir();
    await writeFile(
      join(dir, "values.json"),
      JSON.stringify({
        "/services/docker/postgresql/default": {
          image: "labtest-local/postgres",
          version: "15",
          environment: { TZ: "UTC" },
        },
        "/services/docker/postgresql/shop": { version: "16" },
      }),
    );
    await writeFile(
      join(dir, "state.json"),
      JSON.stringify({ provider: "local", service: "file", options: { path: "values.json" } }),
    );
    const { store } = await openState({ statePath: join(dir, "state.json") });
    expect(await serviceDefaults(store, "docker", "postgresql", "shop")).toEqual({
      image: "labtest-local/postgres",
      version: "16",
      environment: { TZ: "UTC" },
    });
    expect(await serviceDefaults(store, "docker", "postgresql", "blog")).toEqual({
      image: "labtest-local/postgres",
      version: "15",
      environment: { TZ: "UTC" },
    });
    expect(await serviceDefaults(store, "docker", "redis", "shop")).toEqual({});
  });
});

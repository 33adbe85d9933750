import { describe, expect, it, vi } from "vitest";
import { problemsOf } from "../support/config.js";

// A kind with a container recipe only, as a new kind may start: the local provider cannot run it.
vi.mock("../../src/services/kinds/memcached.js", async (original) => {
  const actual = await original<typeof import("../../src/services/kinds/memcached.js")>();
  return { memcached: { ...actual.memcached, native: undefined } };
});

describe("service providers", () => {
  it("refuses a kind its provider has no recipe for, naming the providers that can run it", async () => {
    const problems = await problemsOf(`labtest:
  app_name: shop
  services:
    cache:
      provider: local
      service: memcached
`);
    expect(problems).toEqual([
      expect.objectContaining({
        where: "line 5, labtest.services.cache.provider",
        what: "provider local cannot run memcached",
        fix: "use provider: docker or external",
      }),
    ]);
  });

  it("refuses an independent service on a provider that makes no servers", async () => {
    const problems = await problemsOf(`labtest:
  app_name: shop
  services:
    db:
      provider: external
      service: postgresql
      provision_type: independent
`);
    expect(problems).toEqual([
      expect.objectContaining({
        where: "line 7, labtest.services.db.provision_type",
        what: "the external provider serves communal tenants only: it cannot create a server",
        fix: "use provision_type: communal, or provider: local or docker",
      }),
    ]);
  });
});

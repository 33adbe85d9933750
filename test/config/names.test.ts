import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  appName,
  databaseName,
  envPrefix,
  experimentName,
  hostLabel,
  MYSQL_USER_MAX,
  POSTGRES_IDENTIFIER_MAX,
  resourceName,
  roleName,
} from "../../src/config/names.js";
import { expandPattern } from "../../src/config/patterns.js";

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SQL_IDENTIFIER = /^[a-z][a-z0-9_]*$/;
/** Branch names as git allows them and as people type them, plus anything at all. */
const branchLike = fc.oneof(
  fc.string({ minLength: 0, maxLength: 120 }),
  fc.string({ unit: "grapheme", maxLength: 80 }),
  fc.stringMatching(/^[A-Za-z0-9._/-]{1,100}$/),
);

describe("names", () => {
  it("keeps names that are already valid and hashes the ones it had to change", () => {
    expect(experimentName("main")).toBe("main");
    expect(experimentName("release-2-1")).toBe("release-2-1");
    expect(experimentName("feature/Login")).toMatch(/^feature-login-[0-9a-f]{6}$/);
    expect(experimentName("feature/Login")).toBe(experimentName("feature/Login"));
    expect(experimentName("feature/login")).not.toBe(experimentName("feature/Login"));
    expect(experimentName("Ünïcödé ✓")).toMatch(/^unicode-[0-9a-f]{6}$/);
    expect(experimentName("///")).toMatch(/^[0-9a-f]{6}$/);
    expect(experimentName("x".repeat(200))).toHaveLength(40);
  });

  it("turns any branch name into a valid DNS label of at most 40 characters", () => {
    fc.assert(
      fc.property(branchLike, (branch) => {
        const name = experimentName(branch);
        expect(name).toMatch(DNS_LABEL);
        expect(name.length).toBeLessThanOrEqual(40);
        expect(experimentName(name)).toBe(name);
      }),
      { numRuns: 2000 },
    );
  });

  it("never maps two different branch names to the same experiment name", () => {
    fc.assert(
      fc.property(fc.uniqueArray(branchLike, { minLength: 2, maxLength: 50 }), (branches) => {
        const names = branches.map(experimentName);
        expect(new Set(names).size).toBe(branches.length);
      }),
      { numRuns: 500 },
    );
    // Pairs that normalise to the same text: case, separators, truncation.
    const lookalikes = [
      ["Feature/Login", "feature/login", "feature-login", "feature_login", "feature--login", "FEATURE LOGIN"],
      [`${"a".repeat(60)}-one`, `${"a".repeat(60)}-two`],
    ];
    for (const group of lookalikes) expect(new Set(group.map(experimentName)).size).toBe(group.length);
  });

  it("derives host labels, resource names and SQL identifiers within every limit", () => {
    fc.assert(
      fc.property(
        branchLike,
        branchLike,
        fc.stringMatching(/^[a-z][a-z0-9_-]{0,40}$/),
        (app, branch, service) => {
          const application = appName(app);
          const experiment = experimentName(branch);
          const values = { app_name: application, experiment, branch, release: "0123abcd" };
          const label = hostLabel(expandPattern("{app_name}-{experiment}", values));
          expect(label).toMatch(DNS_LABEL);
          expect(hostLabel(expandPattern("{branch}.{release}", values))).toMatch(DNS_LABEL);
          expect(resourceName(application, experiment, service)).toMatch(DNS_LABEL);
          const database = databaseName(application, experiment, service);
          expect(database).toMatch(SQL_IDENTIFIER);
          expect(Buffer.byteLength(database)).toBeLessThanOrEqual(POSTGRES_IDENTIFIER_MAX);
          const role = roleName(application, experiment, service);
          expect(role).toMatch(SQL_IDENTIFIER);
          expect(role.length).toBeLessThanOrEqual(MYSQL_USER_MAX);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("keeps derived names of different experiments apart", () => {
    fc.assert(
      fc.property(fc.uniqueArray(branchLike, { minLength: 2, maxLength: 30 }), (branches) => {
        const experiments = branches.map(experimentName);
        for (const derive of [
          (e: string) => hostLabel(`shop-${e}`),
          (e: string) => resourceName("shop", e, "db"),
          (e: string) => databaseName("shop", e, "db"),
          (e: string) => roleName("shop", e, "db"),
        ]) {
          expect(new Set(experiments.map(derive)).size).toBe(experiments.length);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("derives environment prefixes from service names", () => {
    expect(envPrefix("db")).toBe("DB");
    expect(envPrefix("my-cache")).toBe("MY_CACHE");
  });
});

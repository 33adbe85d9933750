import { execa } from "execa";
import { expect, it } from "vitest";
import { codeRepository, ensureCodeRepository } from "../../src/experiments/code-store.js";
import { scratchDir } from "../support/project.js";

it("two clients pushing an app's first code at once both get its one repository", async () => {
  const home = await scratchDir();
  // Each push makes the app's repository when it has none: at once, each finds none.
  const made = await Promise.allSettled(
    Array.from({ length: 32 }, () => ensureCodeRepository(home, "hello")),
  );
  expect(made.map((m) => (m.status === "rejected" ? String(m.reason) : m.value))).toEqual(
    Array(32).fill(codeRepository(home, "hello")),
  );
  const bare = await execa("git", ["-C", codeRepository(home, "hello"), "rev-parse", "--is-bare-repository"]);
  expect(bare.stdout).toBe("true");
});

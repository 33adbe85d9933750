import { describe, expect, test } from "vitest";
import { commandArgv } from "../../src/experiments/command.js";
import { ExperimentError } from "../../src/experiments/index.js";

describe("configured commands", () => {
  test("are split as a shell would, with quotes, escapes and variables from the experiment", () => {
    expect(
      commandArgv(
        "before_start_command",
        `node -e "console.log('a b')" --db=$DATABASE_URL "\${EXPERIMENT}-x" a\\ b`,
        {
          DATABASE_URL: "postgres://u:p@db/x",
          EXPERIMENT: "main",
        },
      ),
    ).toEqual(["node", "-e", "console.log('a b')", "--db=postgres://u:p@db/x", "main-x", "a b"]);
    // Quoted text reaches the program as it is: a ; or $( ) inside quotes is not shell syntax here.
    expect(commandArgv("start_command", `echo '$(rm -rf /); ls'`, {})).toEqual(["echo", "$(rm -rf /); ls"]);
  });

  test("reject shell operators, which no shell would run, and say how to use a shell", () => {
    for (const command of ["npm ci && npm run build", "node server.js > log", "a | b", "a; b"]) {
      const error = (() => {
        try {
          commandArgv("app_build_command", command, {});
        } catch (e) {
          return e;
        }
      })() as ExperimentError;
      expect(error).toBeInstanceOf(ExperimentError);
      expect(error.message).toMatch(/app_build_command uses the shell operator .+, and no shell runs it/);
      expect(error.problems[0]?.fix).toContain("sh -c");
    }
    expect(() => commandArgv("start_command", "  ", {})).toThrow(/start_command is empty/);
  });
});

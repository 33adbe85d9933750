import getPort from "get-port";
import { createServer } from "mysql2";
import { describe, expect, it, onTestFinished } from "vitest";
import { ProvisionError } from "../../src/services/errors.js";
import { mysqlServer, olderThanSupported, serverVersion } from "../../src/services/kinds/mysql.js";

// No MySQL image and no registry on this machine: a real 5.6 server cannot run here, so the gate
// openAdmin applies to SELECT VERSION() is tested on the answers such servers give.
describe("the MySQL/MariaDB version gate (a real MySQL 5.6 server cannot run here)", () => {
  it.each([
    ["5.6.51", "MySQL", "5.6.51", true],
    ["5.5.62-log", "MySQL", "5.5.62", true],
    ["5.7.7-rc", "MySQL", "5.7.7", true],
    ["5.7.8-rc-log", "MySQL", "5.7.8", false],
    ["8.0.36", "MySQL", "8.0.36", false],
    ["10.1.48-MariaDB", "MariaDB", "10.1.48", true],
    ["5.5.5-10.1.48-MariaDB-1~bionic", "MariaDB", "10.1.48", true],
    ["10.2.44-MariaDB-1:10.2.44+maria~bionic", "MariaDB", "10.2.44", false],
    ["10.11.6-MariaDB-0+deb12u1", "MariaDB", "10.11.6", false],
  ])("SELECT VERSION() = %s is %s %s, refused: %s", (answer, product, version, refused) => {
    const server = serverVersion(answer);
    expect(server).toEqual({ product, version });
    expect(olderThanSupported(server.product, server.version)).toBe(refused);
  });

  it.each([
    ["MySQL", "5.6", true],
    ["MySQL", "5.5", true],
    ["MySQL", "5.7", false],
    ["MySQL", "5", false],
    ["MySQL", "8", false],
    ["MariaDB", "10.1", true],
    ["MariaDB", "10", false],
    ["MariaDB", "10.2", false],
  ] as const)("an image tag %s:%s (its newest release) is older: %s", (product, tag, older) => {
    expect(olderThanSupported(product, tag)).toBe(older);
  });

  it("openAdmin on a server that says it is MySQL 5.6.51 refuses it, naming the version and the fix, and sends no tenant statement", async () => {
    const server = await announcing("5.6.51");
    const opening = mysqlServer.openAdmin(
      { host: "127.0.0.1", port: server.port, user: "root", password: "secret" },
      { communal: true },
    );
    await expect(opening).rejects.toBeInstanceOf(ProvisionError);
    await expect(opening).rejects.toThrow(/MySQL 5\.6\.51 at 127\.0\.0\.1:\d+ is too old for labtest/);
    await expect(opening).rejects.toThrow("/services/docker/mysql/<app>");
    expect(server.statements).toEqual([]);
  });
});

/**
 * A server that speaks MySQL's protocol and says it is `version`: it accepts any login and
 * answers SELECT VERSION(); any other statement is recorded and refused.
 */
async function announcing(version: string): Promise<{ port: number; statements: string[] }> {
  const statements: string[] = [];
  const port = await getPort({ host: "127.0.0.1" });
  const server = createServer((connection) => {
    // The client closing its end is the end of the test, not a failure.
    connection.on("error", () => undefined);
    connection.serverHandshake({
      protocolVersion: 10,
      serverVersion: version,
      connectionId: 1,
      statusFlags: 2,
      characterSet: 8,
      capabilityFlags: 0xf7ff,
    });
    connection.on("query", (sql: string) => {
      if (/^SELECT VERSION\(\)/i.test(sql)) {
        const column = { catalog: "def", schema: "", table: "", orgTable: "", name: "version", orgName: "" };
        connection.writeTextResult(
          [{ version }],
          [{ ...column, characterSet: 33, columnLength: 384, columnType: 253, flags: 0, decimals: 0 }],
        );
      } else {
        statements.push(sql);
        connection.writeError({ message: "not here", code: 1064 });
      }
    });
  });
  server.listen(port);
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port, statements };
}

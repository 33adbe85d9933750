import { expect, test } from "vitest";
import type { Identity } from "../../src/laboratory/identity.js";
import type { Laboratory } from "../../src/laboratory/index.js";
import { PROTOCOL_VERSION as v } from "../../src/laboratory/index.js";
import { auditedLaboratory } from "../../src/server/audit.js";

const ALICE: Identity = { name: "alice", scope: "deploy", apps: [] };

/** A laboratory that only keeps the requests it is asked, to see what reaches it. */
function recordingLaboratory() {
  const asked: unknown[] = [];
  const lab = {
    delete: async (request: { name: string }) => {
      asked.push(request);
      return { deleted: request.name };
    },
    list: async (request: unknown) => {
      asked.push(request);
      return [];
    },
    close: async () => undefined,
  } as unknown as Laboratory;
  return { lab, asked };
}

test("a request that says who asks carries the identity's name, whatever the client claimed", async () => {
  const { lab, asked } = recordingLaboratory();
  const audited = auditedLaboratory(lab, ALICE, { record: async () => undefined }, "203.0.113.7");

  await audited.delete({ v, app: "shop", name: "main", who: "bob" });
  await audited.delete({ v, app: "shop", name: "main" });
  await audited.list({ v, app: "shop" });

  expect(asked).toEqual([
    { v, app: "shop", name: "main", who: "alice" },
    { v, app: "shop", name: "main", who: "alice" },
    // A request without the field gets none.
    { v, app: "shop" },
  ]);
});

import { describe, expect, it } from "vitest";
import { parseLaboratoryAddress } from "../../src/config/host.js";

describe("laboratory address (host)", () => {
  it.each([
    ["local", { kind: "local" }],
    [
      "ssh://deploy@lab.example.com:2222",
      { kind: "ssh", user: "deploy", host: "lab.example.com", port: 2222 },
    ],
    ["ssh://lab.example.com", { kind: "ssh", host: "lab.example.com" }],
    ["https://lab.example.com/api", { kind: "https", url: "https://lab.example.com/api" }],
    ["10.2.3.4", { kind: "ssh", host: "10.2.3.4" }],
    ["deploy@lab", { kind: "ssh", user: "deploy", host: "lab" }],
    ["deploy@lab.example.com:22", { kind: "ssh", user: "deploy", host: "lab.example.com", port: 22 }],
    ["my-lab-alias", { kind: "ssh", host: "my-lab-alias" }],
  ])("%s", (host, expected) => {
    expect(parseLaboratoryAddress(host)).toEqual(expected);
  });

  it.each([
    ["ftp://lab", /scheme ftp:\/\/ is not supported/],
    ["http://lab", /scheme http:\/\/ is not supported/],
    ["lab:99999", /port 99999 is out of range/],
    ["two words", /neither local, a URL, nor/],
  ])("rejects %s", (host, message) => {
    expect(parseLaboratoryAddress(host)).toMatch(message);
  });
});

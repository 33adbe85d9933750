import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The tests mostly wait on servers, containers and apps: four files at once keep two cores
    // busy (vitest would run one at a time on two), with room in the timeouts for the load.
    maxWorkers: 4,
    testTimeout: 180_000,
    hookTimeout: 180_000,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});

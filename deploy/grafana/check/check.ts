// Type-checks deploy/grafana/postured-dashboard.json against the Grafana Foundation SDK
// (@grafana/grafana-foundation-sdk, pinned in package.json): `npm run check` generates
// dashboard.ts from the JSON (generate.mjs) and runs `tsc --noEmit` (strict, see tsconfig.json).
// A wrong value type, a missing required key (schemaVersion, gridPos.h, a stat panel's
// reduceOptions, ...), a misspelt key or an unknown enum value is a compile error. dashboard.ts
// keeps the JSON file's line numbers, so an error at dashboard.ts:LINE is at that line of the
// JSON.
import type * as dashboardTypes from "@grafana/grafana-foundation-sdk/dashboard";
import { dashboard } from "./dashboard.js";
import type { Json, PosturedDashboard, PosturedPanel } from "./types.js";

// The narrowed types stay within the SDK's own: every panel this check accepts is a valid
// `dashboard.Panel`, and the whole document a valid `dashboard.Dashboard` (in JSON form).
const asSdkPanel = (p: PosturedPanel): Json<dashboardTypes.Panel> => p;
const asSdkDashboard = (d: PosturedDashboard): Json<dashboardTypes.Dashboard> => d;

export const checked: Json<dashboardTypes.Dashboard> = asSdkDashboard(dashboard);
export const panelCount: number = dashboard.panels.filter((p) => p.type !== "row").map(asSdkPanel).length;

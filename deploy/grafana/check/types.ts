// The Grafana Foundation SDK's dashboard types, as they look in a dashboard JSON file.
//
// The SDK's interfaces are meant for TypeScript code: their enums are TypeScript string enums
// (a JSON string such as "query" is not assignable to `VariableType`), and a panel's `targets`
// are `cog.Dataquery`, an interface with a marker method that JSON cannot have. `Json<T>` maps
// a type to its JSON form: string enums become the union of their values, methods disappear,
// everything else (required keys, optional keys, number and boolean types) stays as it is.
//
// `PosturedDashboard` then narrows the SDK's loose spots for the panel types this dashboard
// uses: `options` and `fieldConfig.defaults.custom` are `any` in `dashboard.Panel`; here they
// are the SDK's per-panel `Options` / `FieldConfig`, chosen by the panel's `type`, and every
// target is a Prometheus query.
import type * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import type * as prometheus from "@grafana/grafana-foundation-sdk/prometheus";
import type * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import type * as stat from "@grafana/grafana-foundation-sdk/stat";
import type * as bargauge from "@grafana/grafana-foundation-sdk/bargauge";
import type * as table from "@grafana/grafana-foundation-sdk/table";

type IsAny<T> = 0 extends 1 & T ? true : false;

export type Json<T> =
  IsAny<T> extends true
    ? any
    : T extends string
      ? `${T}`
      : T extends number | boolean | null | undefined
        ? T
        : T extends readonly (infer U)[]
          ? Json<U>[]
          : T extends (...args: never[]) => unknown
            ? never
            : T extends object
              ? { [K in keyof T as T[K] extends (...args: never[]) => unknown ? never : K]: Json<T[K]> }
              : T;

export type PrometheusTarget = Json<prometheus.dataquery>;

type FieldConfigSource<Custom> = {
  defaults: Omit<Json<dashboard.FieldConfig>, "custom"> & { custom?: Json<Custom> };
  overrides: Json<dashboard.FieldConfigSource>["overrides"];
};

type PanelOf<Type extends string, Options, Custom> = Omit<
  Json<dashboard.Panel>,
  "type" | "options" | "targets" | "fieldConfig" | "datasource"
> & {
  type: Type;
  datasource: Json<dashboard.DataSourceRef>;
  targets: PrometheusTarget[];
  options: Json<Options>;
  fieldConfig: FieldConfigSource<Custom>;
};

/** No panel-specific field config (stat, bargauge). */
type NoCustom = Record<string, never>;

export type PosturedPanel =
  | PanelOf<"timeseries", timeseries.Options, timeseries.FieldConfig>
  | PanelOf<"stat", stat.Options, NoCustom>
  | PanelOf<"bargauge", bargauge.Options, NoCustom>
  | PanelOf<"table", table.Options, table.FieldConfig>;

export type PosturedDashboard = Omit<Json<dashboard.Dashboard>, "panels"> & {
  panels: (PosturedPanel | Json<dashboard.RowPanel>)[];
};

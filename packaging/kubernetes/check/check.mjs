// Validate a ServiceMonitor manifest against the Prometheus Operator's ServiceMonitor schema
// (generated from the upstream CRD by @kubernetes-models/prometheus-operator): the offline
// check kubernetes-validate cannot do for a custom resource. Exit 1 with the schema errors.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const file = process.argv[2];
const doc = parse(readFileSync(file, "utf8"));
try {
  new ServiceMonitor(doc).validate();
} catch (e) {
  console.error(`${file}: ${e.message}`);
  process.exit(1);
}
console.log(`${file}: ServiceMonitor ${doc.metadata.name} is valid`);

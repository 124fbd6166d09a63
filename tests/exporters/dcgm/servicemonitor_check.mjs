// Validates ServiceMonitor objects (a JSON list on stdin) against prometheus-operator's CRD schema, as published in
// @kubernetes-models/prometheus-operator; prints one line per object and exits 1 if any is invalid.
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import fs from "node:fs";

const docs = JSON.parse(fs.readFileSync(0, "utf8"));
for (const doc of docs) {
  try {
    new ServiceMonitor(doc).validate();
    console.log(`ok ${doc.metadata.name}`);
  } catch (err) {
    console.log(`invalid ${doc.metadata?.name}: ${err.message}`);
    process.exitCode = 1;
  }
}

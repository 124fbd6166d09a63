// Validates prometheus-operator objects (a JSON list on stdin) against their CRD schemas as published in
// @kubernetes-models/prometheus-operator; prints one line per object and exits 1 if any is invalid.
import fs from "node:fs";

const docs = JSON.parse(fs.readFileSync(0, "utf8"));
for (const doc of docs) {
  try {
    const module = await import(`@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${doc.kind}`);
    new module[doc.kind](doc).validate();
    console.log(`ok ${doc.kind} ${doc.metadata.name}`);
  } catch (err) {
    console.log(`invalid ${doc.kind} ${doc.metadata?.name}: ${err.message}`);
    process.exitCode = 1;
  }
}

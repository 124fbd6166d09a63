// Validates custom resources (a JSON list on stdin) against their CRD schemas as published in @kubernetes-models
// (prometheus-operator's and KEDA's); prints one line per object and exits 1 if any is invalid.
import fs from "node:fs";

const PACKAGES = { "monitoring.coreos.com": "prometheus-operator", "keda.sh": "keda" };
const docs = JSON.parse(fs.readFileSync(0, "utf8"));
for (const doc of docs) {
  try {
    const group = doc.apiVersion.split("/")[0];
    if (!(group in PACKAGES)) throw new Error(`no schema for API group ${group}`);
    const module = await import(`@kubernetes-models/${PACKAGES[group]}/${doc.apiVersion}/${doc.kind}`);
    new module[doc.kind](doc).validate();
    console.log(`ok ${doc.kind} ${doc.metadata.name}`);
  } catch (err) {
    console.log(`invalid ${doc.kind} ${doc.metadata?.name}: ${err.message}`);
    process.exitCode = 1;
  }
}

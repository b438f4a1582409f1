// Checks Adaptive Cards with Microsoft's own parser (the `adaptivecards` npm package, the renderer the
// Teams clients and the Agents Playground use). Reads a JSON array of {"name": ..., "card": {...}} on stdin and
// writes a JSON array of {"name": ..., "problems": [...]} on stdout: parse events and validation failures at
// schema version 1.5, plus every property the parser does not know for its object type (typos, or properties
// that need a newer schema). No DOM is needed: parsing and validation do not render.
//
// One documented exception: the Teams people picker (`Input.ChoiceSet` with `choices.data` = Data.Query over
// graph.microsoft.com/users) is a Teams feature that Teams supports in cards of version 1.2 and later
// (msteams-docs people-picker.md), while this library tags `choices.data` as 1.6 and does not count dynamic
// choices as choices. For that element only, "unsupported property choices.data" and "must have at least one
// choice" are not reported; its Data.Query object is still checked against the library's 1.6 schema.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const AC = require("adaptivecards/dist/adaptivecards.js");

const TEAMS_DATASETS = new Set(["graph.microsoft.com/users", "graph.microsoft.com/users?scope=currentContext"]);

function schemaNames(obj) {
  const schema = obj.getSchema();
  const names = new Set();
  for (let i = 0; i < schema.getCount(); i++) names.add(schema.getItemAt(i).name);
  return names;
}

// Keys parsed outside the property schemas (collections and fallback), by JSON type.
const STRUCTURAL = {
  AdaptiveCard: ["body", "actions"],
  Container: ["items"],
  ActionSet: ["actions"],
  ColumnSet: ["columns"],
  Column: ["items"],
  FactSet: ["facts"],
};

function isPeoplePicker(node) {
  const q = node && node["choices.data"];
  return node && node.type === "Input.ChoiceSet" && q && q.type === "Data.Query" && TEAMS_DATASETS.has(q.dataset);
}

function unknownProperties(node, path, kind, problems) {
  if (Array.isArray(node)) {
    node.forEach((item, i) => unknownProperties(item, `${path}[${i}]`, kind, problems));
    return;
  }
  if (!node || typeof node !== "object") return;
  let instance;
  if (kind === "card") instance = new AC.AdaptiveCard();
  else if (kind === "fact") instance = new AC.Fact();
  else if (kind === "choice") instance = new AC.Choice();
  else if (kind === "refresh") instance = new AC.RefreshDefinition();
  else if (kind === "query") instance = new AC.ChoiceSetInputDataQuery();
  else if (kind === "action") instance = AC.GlobalRegistry.actions.createInstance(node.type, AC.Versions.latest);
  else instance = AC.GlobalRegistry.elements.createInstance(node.type, AC.Versions.latest);
  if (!instance) {
    problems.push(`${path}: unknown ${kind} type ${JSON.stringify(node.type)}`);
    return;
  }
  const known = schemaNames(instance);
  for (const extra of STRUCTURAL[node.type] || []) known.add(extra);
  if (kind === "element" || kind === "action") known.add("fallback");
  for (const [key, value] of Object.entries(node)) {
    if (!known.has(key)) {
      problems.push(`${path}.${key}: property unknown to ${node.type || kind}`);
      continue;
    }
    const child = `${path}.${key}`;
    if (key === "body" || key === "items") unknownProperties(value, child, "element", problems);
    else if (key === "actions" || key === "selectAction") unknownProperties(value, child, "action", problems);
    else if (key === "facts") unknownProperties(value, child, "fact", problems);
    else if (key === "choices") unknownProperties(value, child, "choice", problems);
    else if (key === "choices.data") unknownProperties(value, child, "query", problems);
    else if (key === "refresh") unknownProperties(value, child, "refresh", problems);
    else if (key === "action" && kind === "refresh") unknownProperties(value, child, "action", problems);
    else if (key === "fallback" && value && typeof value === "object") unknownProperties(value, child, kind, problems);
  }
}

function collectPeoplePickers(node, found) {
  if (Array.isArray(node)) node.forEach((n) => collectPeoplePickers(n, found));
  else if (node && typeof node === "object") {
    if (isPeoplePicker(node)) found.push(node);
    Object.values(node).forEach((v) => collectPeoplePickers(v, found));
  }
  return found;
}

function check(card) {
  const problems = [];
  if (!card || card.type !== "AdaptiveCard") return ["not an AdaptiveCard"];
  if (card.version !== "1.5") problems.push(`version is ${JSON.stringify(card.version)}, expected "1.5"`);
  const pickers = collectPeoplePickers(card, []);

  const parsed = new AC.AdaptiveCard();
  const context = new AC.SerializationContext(AC.Versions.v1_5);
  parsed.parse(card, context);
  for (let i = 0; i < context.eventCount; i++) {
    const event = context.getEventAt(i);
    const source = event.source;
    const pickerException =
      event.event === AC.ValidationEvent.UnsupportedProperty &&
      /"?choices\.data"?/.test(event.message) &&
      source instanceof AC.ChoiceSetInput &&
      pickers.some((p) => p.id === source.id);
    if (!pickerException) problems.push(`parse: ${event.message}`);
  }
  for (const event of parsed.validateProperties().validationEvents) {
    const source = event.source;
    const pickerException =
      event.event === AC.ValidationEvent.CollectionCantBeEmpty &&
      source instanceof AC.ChoiceSetInput &&
      pickers.some((p) => p.id === source.id);
    if (!pickerException) problems.push(`validate: ${event.message}`);
  }
  // The people picker's Data.Query, checked against the library's 1.6 schema.
  for (const picker of pickers) {
    const q = new AC.ChoiceSetInputDataQuery();
    const ctx16 = new AC.SerializationContext(AC.Versions.v1_6);
    q.parse(picker["choices.data"], ctx16);
    for (let i = 0; i < ctx16.eventCount; i++) problems.push(`people picker ${picker.id}: ${ctx16.getEventAt(i).message}`);
  }
  unknownProperties(card, "$", "card", problems);
  return problems;
}

const input = JSON.parse(readFileSync(0, "utf8"));
const results = input.map(({ name, card }) => {
  try {
    return { name, problems: check(card) };
  } catch (error) {
    return { name, problems: [`parser threw: ${error && error.stack ? error.stack : error}`] };
  }
});
process.stdout.write(JSON.stringify(results));

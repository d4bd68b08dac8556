// The JSON Schemas of docs/asyncapi.yaml and the TypeScript types the tap publishes (and the
// example consumer reads) say the same, field by field: the same names, the same required
// ones, the same JSON types, the same literal values. Read with the TypeScript compiler's
// own type checker, so an edit to either side without the other fails here. Patterns,
// formats and bounds are the schema's refinements of the same types.
import t from 'tap';
import { join } from 'node:path';
import ts from 'typescript';
import { asyncapi } from './helpers/contract.js';
import { ROOT } from './helpers/tap-process.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/** A JSON shape both sides reduce to: JSON types, string literals, and object/array contents. */
interface Shape {
  types: Set<string>; // string, number, boolean, null, object, array
  literals: Set<string> | null; // when every string is one of these
  props?: Map<string, { shape: Shape; required: boolean }>;
  items?: Shape;
  /** An object with any keys (Record<string, unknown>, `alert`). */
  open?: boolean;
  /** An object whose keys are these values: Record<'a' | 'b', number>. */
  values?: Shape;
}

const FILES = {
  types: 'controller/src/types.ts',
  batch: 'controller/src/publish/keepalive-batch.ts',
  alert: 'controller/src/alerts/alert-event.ts',
  tap: 'controller/src/publish/reliable.ts',
  example: 'examples/consumer/src/events.ts',
};

const program = ts.createProgram(Object.values(FILES).map((f) => join(ROOT, f)), {
  target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true, skipLibCheck: true, noEmit: true, types: ['node'],
});
const checker = program.getTypeChecker();

function declared(file: string, name: string): ts.Type {
  const sf = program.getSourceFile(join(ROOT, file));
  if (!sf) throw new Error(`${file} not in the program`);
  const sym = checker.getExportsOfModule(checker.getSymbolAtLocation(sf)!).find((s) => s.name === name);
  if (!sym) throw new Error(`${file} exports no ${name}`);
  return checker.getDeclaredTypeOfSymbol(sym);
}

function tsShape(type: ts.Type, seen = new Set<ts.Type>()): Shape {
  const s: Shape = { types: new Set(), literals: new Set() };
  const parts = type.isUnion() ? type.types : [type];
  let plainString = false;
  for (const p of parts) {
    const f = p.flags;
    if (f & ts.TypeFlags.StringLiteral) { s.types.add('string'); s.literals!.add((p as ts.StringLiteralType).value); }
    else if (f & ts.TypeFlags.String) { s.types.add('string'); plainString = true; }
    else if (f & (ts.TypeFlags.Number | ts.TypeFlags.NumberLiteral)) s.types.add('number');
    else if (f & (ts.TypeFlags.Boolean | ts.TypeFlags.BooleanLiteral)) s.types.add('boolean');
    else if (f & ts.TypeFlags.Null) s.types.add('null');
    else if (f & ts.TypeFlags.Undefined) continue; // optional: said by `required`
    else if (checker.isArrayType(p)) { s.types.add('array'); s.items = tsShape(checker.getTypeArguments(p as ts.TypeReference)[0], seen); }
    else if (f & ts.TypeFlags.Object) {
      s.types.add('object');
      if (seen.has(p)) continue;
      const index = checker.getIndexInfoOfType(p, ts.IndexKind.String);
      const props = checker.getPropertiesOfType(p);
      if (index && !props.length) { s.open = true; continue; }
      // Record<'a' | 'b', T>: every key required, each value the same shape.
      s.props = new Map();
      for (const prop of props) {
        const pt = checker.getTypeOfSymbol(prop);
        s.props.set(prop.name, { shape: tsShape(pt, new Set([...seen, p])), required: !(prop.flags & ts.SymbolFlags.Optional) });
      }
    } else throw new Error(`a type the contract cannot carry: ${checker.typeToString(p)}`);
  }
  if (plainString || !s.types.has('string')) s.literals = null;
  return s;
}

const deref = (o: any): any => (o?.$ref ? deref(o.$ref.slice(2).split('/').reduce((a: any, k: string) => a[k], asyncapi)) : o);

function schemaShape(node: any): Shape {
  const sch = deref(node);
  const s: Shape = { types: new Set(), literals: null };
  for (const alt of [...(sch.oneOf ?? []), ...(sch.anyOf ?? [])]) {
    const a = schemaShape(alt);
    for (const x of a.types) s.types.add(x);
    if (a.props) s.props = a.props;
    if (a.items) s.items = a.items;
    if (a.open) s.open = true;
    if (a.literals) s.literals = new Set([...(s.literals ?? []), ...a.literals]);
  }
  const types: string[] = sch.type === undefined ? [] : [sch.type].flat();
  for (const ty of types) s.types.add(ty === 'integer' ? 'number' : ty);
  if (sch.const !== undefined) s.literals = new Set([sch.const]);
  if (sch.enum) s.literals = new Set(sch.enum);
  if (s.types.has('array')) s.items = schemaShape(sch.items);
  if (s.types.has('object') && !sch.oneOf) {
    if (!sch.properties) s.open = true;
    else {
      s.props = new Map();
      const req = new Set(sch.required ?? []);
      for (const [k, v] of Object.entries(sch.properties)) s.props.set(k, { shape: schemaShape(v), required: req.has(k) });
      if (sch.additionalProperties !== false) throw new Error('an object schema of the contract must close additionalProperties');
    }
  }
  return s;
}

/** Differences between two shapes, as readable lines. */
function diff(a: Shape, b: Shape, at: string): string[] {
  const out: string[] = [];
  const list = (x: Set<string> | null) => (x ? [...x].sort().join('|') : 'any');
  if (list(a.types) !== list(b.types)) out.push(`${at}: TypeScript ${list(a.types)}, schema ${list(b.types)}`);
  if (list(a.literals) !== list(b.literals) && a.types.has('string')) out.push(`${at}: TypeScript strings ${list(a.literals)}, schema ${list(b.literals)}`);
  if (a.items || b.items) out.push(...(a.items && b.items ? diff(a.items, b.items, `${at}[]`) : [`${at}[]: items on one side only`]));
  if (!!a.open !== !!b.open) out.push(`${at}: an open object on one side only`);
  if (a.props || b.props) {
    const ap = a.props ?? new Map();
    const bp = b.props ?? new Map();
    for (const k of new Set([...ap.keys(), ...bp.keys()])) {
      const x = ap.get(k);
      const y = bp.get(k);
      if (!x) out.push(`${at}.${k}: in the schema only`);
      else if (!y) out.push(`${at}.${k}: in TypeScript only`);
      else {
        if (x.required !== y.required) out.push(`${at}.${k}: ${x.required ? 'required' : 'optional'} in TypeScript, ${y.required ? 'required' : 'optional'} in the schema`);
        out.push(...diff(x.shape, y.shape, `${at}.${k}`));
      }
    }
  }
  return out;
}

const PAIRS: [string, keyof typeof FILES, string][] = [
  ['StatusChangeEvent', 'types', 'StatusChangeEvent'],
  ['KeepaliveEvent', 'types', 'KeepaliveEvent'],
  ['KeepaliveBatchEvent', 'batch', 'KeepaliveBatchEvent'],
  ['AlertEvent', 'alert', 'AlertEvent'],
  ['TapEvent', 'tap', 'TapLifecycleEvent'],
  // The example consumer's own copy of the types, which a platform team copies with it.
  ['StatusChangeEvent', 'example', 'StatusChangeEvent'],
  ['KeepaliveEvent', 'example', 'KeepaliveEvent'],
  ['KeepaliveBatchEvent', 'example', 'KeepaliveBatchEvent'],
  ['AlertEvent', 'example', 'AlertEvent'],
  ['TapEvent', 'example', 'TapEvent'],
];

t.test('the schemas and the TypeScript types agree, field by field', async (t) => {
  for (const [schema, file, type] of PAIRS) {
    t.same(diff(tsShape(declared(FILES[file], type)), schemaShape(asyncapi.components.schemas[schema]), type), [],
      `${FILES[file]} ${type} = docs/asyncapi.yaml ${schema}`);
  }
});

t.test('what each tap action carries: TapLifecycleDetails = the schema\'s if/then', async (t) => {
  const details = declared(FILES.tap, 'TapLifecycleDetails');
  const fromTs = Object.fromEntries(checker.getPropertiesOfType(details).map((p) =>
    [p.name, checker.getPropertiesOfType(checker.getTypeOfSymbol(p)).map((q) => q.name).sort()]));
  const sch = asyncapi.components.schemas.TapEvent;
  const fromSchema = Object.fromEntries(sch.properties.action.enum.map((a: string) => {
    const rule = sch.allOf.find((r: any) => r.if.properties.action.const === a);
    return [a, rule ? [...rule.then.required].sort() : []];
  }));
  t.same(fromTs, fromSchema);
});

t.test('the comparison sees a difference', async (t) => {
  // A schema one field short of StatusChangeEvent, and one with an extra literal: both noticed.
  const full = asyncapi.components.schemas.StatusChangeEvent;
  const { reason: _r, ...props } = full.properties;
  const short = { ...full, properties: props, required: full.required.filter((k: string) => k !== 'reason') };
  t.same(diff(tsShape(declared(FILES.types, 'StatusChangeEvent')), schemaShape(short), 'S'), ['S.reason: in TypeScript only']);
  const wider = { ...full, properties: { ...full.properties, current_status: { type: 'string', enum: ['online'] } } };
  t.match(diff(tsShape(declared(FILES.types, 'StatusChangeEvent')), schemaShape(wider), 'S'), [/S\.current_status: TypeScript strings active\|disconnected/]);
});

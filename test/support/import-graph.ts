// The import graph of the sources, read with TypeScript's own parser: every
// import and export-from (type-only ones too), every dynamic import() and
// every import('...') type. test/unit/import-boundaries.test.ts checks it
// against the folder rules and for circles; the checks are plain functions
// over a graph, so they can be tried on a small bad graph too.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import ts from 'typescript';

/** Every module specifier a source file names, in order of appearance. */
export function importSpecifiers(fileName: string, text: string): string[] {
  const kind = fileName.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, kind);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteralLike(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text);
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteralLike(node.moduleReference.expression)
    ) {
      found.push(node.moduleReference.expression.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      // A computed import() cannot be checked: it is refused outright.
      found.push(argument && ts.isStringLiteralLike(argument) ? argument.text : '<computed import()>');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteralLike(node.argument.literal)) {
      found.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Files (repository-relative, '/'-separated) and the files each one imports; imports of packages are left out. */
export type ImportGraph = Map<string, Set<string>>;

export interface ReadGraph {
  graph: ImportGraph;
  /** The packages (and node: or cloudflare: modules) each file imports. */
  packages: Map<string, Set<string>>;
  /** Relative imports that name no source file, and computed import() calls. */
  unresolved: { from: string; specifier: string }[];
}

const toPosix = (path: string) => path.split(sep).join('/');

function sourceFiles(root: string, dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) files.push(...sourceFiles(root, path));
    else if (/\.tsx?$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(path);
  }
  return files;
}

/** The file a relative specifier names, as the bundlers resolve it (exact, .ts, .tsx, /index.ts, /index.tsx). */
function resolveRelative(root: string, from: string, specifier: string): string | null {
  const base = toPosix(relative(root, join(root, dirname(from), specifier)));
  for (const candidate of [base, `${base}.ts`, `${base}.tsx`, `${base}/index.ts`, `${base}/index.tsx`]) {
    const path = join(root, candidate);
    if (existsSync(path) && statSync(path).isFile()) return candidate;
  }
  return null;
}

/** The import graph of every .ts/.tsx file under `dirs` (relative to `root`). */
export function readImportGraph(root: string, dirs: string[]): ReadGraph {
  const graph: ImportGraph = new Map();
  const packages = new Map<string, Set<string>>();
  const unresolved: ReadGraph['unresolved'] = [];
  for (const file of dirs.flatMap((dir) => sourceFiles(root, dir))) {
    const targets = new Set<string>();
    const named = new Set<string>();
    for (const specifier of importSpecifiers(file, readFileSync(join(root, file), 'utf8'))) {
      if (specifier === '<computed import()>') unresolved.push({ from: file, specifier });
      else if (!specifier.startsWith('.')) named.add(specifier);
      else {
        const target = resolveRelative(root, file, specifier);
        if (target) targets.add(target);
        else unresolved.push({ from: file, specifier });
      }
    }
    graph.set(file, targets);
    packages.set(file, named);
  }
  return { graph, packages, unresolved };
}

export interface BoundaryRule {
  /** Files the rule applies to (a folder prefix such as 'worker-collector/'). */
  from: string;
  /** Files under `from` the rule leaves out. */
  except?: string[];
  /** Imports the rule restricts (a folder prefix such as 'src/'). */
  into: string;
  /** Of those, what the files may import: folder prefixes ('src/shared/') or exact files ('src/options.ts'). */
  allowed: string[];
}

/** Every import that breaks a rule, as 'from -> to'. */
export function boundaryViolations(graph: ImportGraph, rules: BoundaryRule[]): string[] {
  const violations: string[] = [];
  for (const [from, targets] of graph) {
    for (const rule of rules) {
      if (!from.startsWith(rule.from) || rule.except?.includes(from)) continue;
      for (const to of targets) {
        if (
          to.startsWith(rule.into) &&
          !rule.allowed.some((allowed) => (allowed.endsWith('/') ? to.startsWith(allowed) : to === allowed))
        ) {
          violations.push(`${from} -> ${to}`);
        }
      }
    }
  }
  return violations.sort();
}

/**
 * Every import circle, each as a path that ends where it starts
 * (a -> b -> c -> a): one per strongly connected component (Tarjan), so a
 * tangle of files is one report, not hundreds.
 */
export function importCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const connect = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const target of graph.get(node) ?? []) {
      if (!graph.has(target)) continue;
      if (!index.has(target)) {
        connect(target);
        low.set(node, Math.min(low.get(node)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node)!, index.get(target)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || graph.get(node)?.has(node)) components.push(component);
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) connect(node);
  return components.map((component) => cyclePath(graph, new Set(component)));
}

/** A shortest circle through the component's first file (by name), found breadth-first inside the component. */
function cyclePath(graph: ImportGraph, component: Set<string>): string[] {
  const start = [...component].sort()[0]!;
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const target of [...(graph.get(node) ?? [])].sort()) {
      if (!component.has(target)) continue;
      if (target === start) {
        const path = [start];
        for (let at = node; at !== start; at = cameFrom.get(at)!) path.splice(1, 0, at);
        return [...path, start];
      }
      if (!cameFrom.has(target)) {
        cameFrom.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}

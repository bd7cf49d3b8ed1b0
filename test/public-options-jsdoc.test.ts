/**
 * Every option of the public API has JSDoc: each property of an exported `…Options`, `…Params` or
 * `…Config` type of the three entries (tinker-ts, tinker-ts/local, tinker-ts/toolkit), as an editor
 * shows it on hover. Read from the sources with the TypeScript compiler, so no build is needed.
 */
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const entries = ["src/index.ts", "src/local/index.ts", "src/toolkit/index.ts"].map((f) => `${root}${f}`);

/** Types inferred from a valibot schema: the type itself is documented where the schema is. */
const INFERRED_FROM_SCHEMA = new Set(["OptimizerConfig"]);

describe("public options", () => {
  it("every property of an exported …Options / …Params / …Config type has a doc comment", () => {
    const program = ts.createProgram(entries, {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.esnext.disposable.d.ts"],
      types: [],
      strict: true,
      skipLibCheck: true,
      noEmit: true,
    });
    const checker = program.getTypeChecker();
    const undocumented: string[] = [];
    const seen = new Set<ts.Symbol>();
    let checked = 0;
    for (const entry of entries) {
      const module = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
      for (const exported of checker.getExportsOfModule(module)) {
        const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
        if (!/(Options|Params|Config)$/.test(symbol.name) || INFERRED_FROM_SCHEMA.has(symbol.name)) continue;
        if (!(symbol.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) || seen.has(symbol))
          continue;
        seen.add(symbol);
        for (const property of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(symbol))) {
          checked++;
          if (ts.displayPartsToString(property.getDocumentationComment(checker)).trim() === "") {
            undocumented.push(`${symbol.name}.${property.name}`);
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(undocumented).toEqual([]);
  });
});

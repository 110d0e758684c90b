import { describe, expect, it } from "vitest";
import { enforceHeader, wasHeaderCorrected } from "./enforceHeader";

describe("enforceHeader", () => {
  it("leaves correctly-headered mermaid untouched", () => {
    const input = "flowchart TD\n    A[Start] --> B[End]";
    expect(enforceHeader(input, "flowchart TD")).toBe(input);
  });

  it("strips a ```mermaid fenced block", () => {
    const input = "```mermaid\nflowchart TD\n    A --> B\n```";
    expect(enforceHeader(input, "flowchart TD")).toBe(
      "flowchart TD\n    A --> B",
    );
  });

  it("removes style directive lines", () => {
    const input = "flowchart TD\n    A --> B\n    style A fill:#f00";
    expect(enforceHeader(input, "flowchart TD")).toBe(
      "flowchart TD\n    A --> B",
    );
  });

  it("removes classDef directive lines", () => {
    const input =
      "flowchart TD\n    A --> B\n    classDef important fill:#f00";
    expect(enforceHeader(input, "flowchart TD")).toBe(
      "flowchart TD\n    A --> B",
    );
  });

  it("removes multiple directive lines at once", () => {
    const input = [
      "flowchart TD",
      "    A --> B",
      "    style A fill:#f00",
      "    classDef x fill:#000",
      "    class A x",
      '    click A "https://example.com"',
      "    B --> C",
    ].join("\n");
    expect(enforceHeader(input, "flowchart TD")).toBe(
      "flowchart TD\n    A --> B\n    B --> C",
    );
  });
});

describe("wasHeaderCorrected", () => {
  it("is false when the header already matches", () => {
    const input = "flowchart TD\n    A --> B";
    expect(wasHeaderCorrected(input, "flowchart TD")).toBe(false);
  });

  it("is true when the model returned the wrong recognized diagram type", () => {
    const input = "classDiagram\n    Animal <|-- Dog";
    expect(wasHeaderCorrected(input, "flowchart TD")).toBe(true);
  });
});

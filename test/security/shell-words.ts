/**
 * A small POSIX shell word splitter for tests: splits one line into words
 * (quotes removed, as the shell would) and operators (unquoted ; & | < > ( )),
 * and lists every place the shell would expand something ($..., `...`)
 * outside single quotes. Two renderings of a template have the same shell
 * structure when their operators and expansions are equal and only the words
 * holding the varied value differ.
 */
export interface ShellLine {
  words: string[];
  operators: string[];
  expansions: string[];
}

export function splitShellLine(line: string): ShellLine {
  const words: string[] = [];
  const operators: string[] = [];
  const expansions: string[] = [];
  let cur: string | null = null;
  const push = () => {
    if (cur !== null) words.push(cur);
    cur = null;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unbalanced single quote in: ${line}`);
      cur = (cur ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && '\\"$`\n'.includes(line[j + 1] ?? '')) s += line[++j];
        else {
          if (line[j] === '$' || line[j] === '`') expansions.push(line.slice(j, j + 3));
          s += line[j];
        }
      }
      if (j >= line.length) throw new Error(`unbalanced double quote in: ${line}`);
      cur = (cur ?? '') + s;
      i = j;
    } else if (c === '\\') {
      cur = (cur ?? '') + (line[i + 1] ?? '');
      i++;
    } else if (c === ' ' || c === '\t') push();
    else if (';&|<>()'.includes(c)) {
      push();
      operators.push(c);
    } else if (c === '#' && cur === null) break; // a comment
    else {
      if (c === '$' || c === '`') expansions.push(line.slice(i, i + 3));
      cur = (cur ?? '') + c;
    }
  }
  push();
  return { words, operators, expansions };
}

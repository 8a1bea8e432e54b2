/**
 * Relocating a prefix in the stream: the byte-level rules (after conda's
 * conda/core/portability.py `replace_prefix`/`binary_replace` and
 * conda-pack's conda_pack/prefixes.py, read in github conda/conda-pack), then
 * the packer on a real prefix directory made under umask 027, read back with
 * tar-stream and unpacked with GNU tar.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrefixTooLongError, imageMode, recordsChannels, scrubCredentials, relocateContent, relocateLinkTarget, replaceBinary, replaceText, rewritePyc, rewriteRecord } from '../../src/model/relocation.js';
import { emptyRelocationReport, packContext, type PrefixTransform } from '../../src/runtime/build-context.js';
import { tempDir } from '../helpers.js';

const B = (s: string) => Buffer.from(s, 'latin1');
const OLD = '/home/researcher/miniforge3/envs/analysis';
const NEW = '/opt/env';

describe('byte rules', () => {
  it('text: every occurrence replaced, length may change', () => {
    expect(replaceText(B(`a ${OLD}/bin x ${OLD}/lib`), B(OLD), B(NEW)).toString()).toBe(`a ${NEW}/bin x ${NEW}/lib`);
    const same = B('nothing here');
    expect(replaceText(same, B(OLD), B(NEW))).toBe(same);
  });

  it('binary: the C string is rewritten and NUL-padded to its old length, the rest of the file does not move', () => {
    const data = Buffer.concat([B('\x7fELF'), B(`\0${OLD}/lib:${OLD}/lib64\0after\0`), B(`${OLD}`)]);
    const out = replaceBinary(data, B(OLD), B(NEW));
    expect(out.length).toBe(data.length);
    const pad = 2 * (OLD.length - NEW.length);
    expect(out.toString('latin1')).toBe(`\x7fELF\0${NEW}/lib:${NEW}/lib64${'\0'.repeat(pad)}\0after\0${OLD}`);
  });

  it('binary: a longer new prefix is refused; one that is not in the file is fine', () => {
    expect(() => replaceBinary(B('x/e/lib\0'), B('/e'), B(NEW))).toThrow(PrefixTooLongError);
    expect(replaceBinary(B('x\0'), B('/e'), B(NEW)).toString()).toBe('x\0');
  });

  it('shebangs and other text are replaced in place; ELF goes binary; unknown binary data is reported, not touched', () => {
    const script = B(`#!${OLD}/bin/python3.11\nimport sys\n`);
    expect(relocateContent('bin/tool', script, OLD, NEW)).toEqual({ kind: 'text', data: B(`#!${NEW}/bin/python3.11\nimport sys\n`) });
    const elf = Buffer.concat([B('\x7fELF\x02\x01'), B(`${OLD}/lib\0`)]);
    const r = relocateContent('lib/libx.so', elf, OLD, NEW);
    expect(r.kind).toBe('binary');
    expect(r.kind !== 'dropped' && r.data.length).toBe(elf.length);
    const blob = Buffer.concat([B('\x89PNG\0\xff'), B(OLD)]);
    expect(relocateContent('share/x.png', blob, OLD, NEW)).toEqual({ kind: 'opaque', data: blob });
    // conda's record decides over the content: file_mode binary on a file without NULs.
    expect(relocateContent('etc/x.conf', B(`p=${OLD}\0`), OLD, NEW, 'binary').kind).toBe('binary');
  });

  it('a+rX: readable by all, searchable where it was executable or a directory; no setuid', () => {
    expect(imageMode(0o640, false).toString(8)).toBe('644');
    expect(imageMode(0o750, true).toString(8)).toBe('755');
    expect(imageMode(0o700, false).toString(8)).toBe('755');
    expect(imageMode(0o4750, false).toString(8)).toBe('755');
    expect(imageMode(0o600, true).toString(8)).toBe('755');
  });

  it('symlinks: absolute ones into the prefix move, relative and outside ones stay', () => {
    expect(relocateLinkTarget(`${OLD}/bin/python3.11`, OLD, NEW)).toBe(`${NEW}/bin/python3.11`);
    expect(relocateLinkTarget(OLD, OLD, NEW)).toBe(NEW);
    expect(relocateLinkTarget(`${OLD}2/bin/x`, OLD, NEW)).toBe(`${OLD}2/bin/x`);
    expect(relocateLinkTarget('python3.11', OLD, NEW)).toBe('python3.11');
    expect(relocateLinkTarget('/usr/lib/x', OLD, NEW)).toBe('/usr/lib/x');
  });

  it('channel credentials in conda-meta, history and .condarc are taken out; ${VAR} tokens stay', () => {
    expect(recordsChannels('conda-meta/x-1-0.json') && recordsChannels('conda-meta/history') && recordsChannels('.condarc')).toBe(true);
    expect(recordsChannels('lib/x.json')).toBe(false);
    const rec = B('{"url": "https://lab:pw1@conda.example.org/t/tok123/cf/linux-64/x.conda", "channel": "https://conda.example.org/t/${TOKEN}/cf"}');
    expect(scrubCredentials(rec)!.toString()).toBe('{"url": "https://conda.example.org/cf/linux-64/x.conda", "channel": "https://conda.example.org/t/${TOKEN}/cf"}');
    expect(scrubCredentials(B('channels: [conda-forge]'))).toBeUndefined();
  });

  it('pip RECORD: hash and size of changed files updated, others and the RECORD line itself kept', () => {
    const text = ['mod/__init__.py,sha256=AAA,10', '../../../bin/tool,sha256=BBB,40', '"we,ird.txt",sha256=CCC,3', 'mod-1.0.dist-info/RECORD,,', ''].join('\n');
    const changed = new Map([
      ['bin/tool', { hash: 'NEW', size: 33 }],
      ['lib/python3.11/site-packages/we,ird.txt', { hash: 'Q', size: 4 }],
    ]);
    expect(rewriteRecord(text, 'lib/python3.11/site-packages/mod-1.0.dist-info', changed, OLD, NEW)).toBe(
      ['mod/__init__.py,sha256=AAA,10', '../../../bin/tool,sha256=NEW,33', '"we,ird.txt",sha256=Q,4', 'mod-1.0.dist-info/RECORD,,', ''].join('\n'),
    );
  });
});

describe('.pyc: marshalled strings rewritten with their lengths (a real CPython pyc)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('sifpack-pyc-');
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('co_filename names the new prefix and the code object still loads and runs', async () => {
    const old = path.join(dir, 'home', 'someone', 'envs', 'analysis');
    const src = path.join(old, 'lib', 'mod.py');
    await fs.mkdir(path.dirname(src), { recursive: true });
    await fs.writeFile(src, 'def f():\n    return 42\nWHERE = __file__\n');
    // python3 on this host (pyenv); the marshal format is CPython's own.
    execFileSync('python3', ['-c', 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2])', src, path.join(dir, 'mod.pyc')]);
    const pyc = await fs.readFile(path.join(dir, 'mod.pyc'));
    expect(pyc.indexOf(B(old))).toBeGreaterThan(0);
    const out = rewritePyc(pyc, B(old), B(NEW));
    expect(out).toBeDefined();
    expect(out!.indexOf(B(old))).toBe(-1);
    await fs.writeFile(path.join(dir, 'new.pyc'), out!);
    const check = execFileSync('python3', [
      '-c',
      'import marshal, sys; c = marshal.loads(open(sys.argv[1], "rb").read()[16:]); g = {"__file__": "x"}; exec(c, g); print(c.co_filename, g["f"](), g["f"].__code__.co_filename)',
      path.join(dir, 'new.pyc'),
    ]).toString();
    expect(check.trim()).toBe(`${NEW}/lib/mod.py 42 ${NEW}/lib/mod.py`);
  });

  it('an occurrence that is not a marshalled string: the .pyc is dropped, not corrupted', () => {
    const fake = Buffer.concat([Buffer.alloc(16), B('\xe3junk'), B(OLD), B('\0')]);
    expect(rewritePyc(fake, B(OLD), B(NEW))).toBeUndefined();
    expect(relocateContent('lib/__pycache__/x.cpython-311.pyc', fake, OLD, NEW)).toEqual({ kind: 'dropped' });
  });
});

interface Entry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  uname?: string;
  linkname?: string;
  data: Buffer;
}

async function readTar(stream: NodeJS.ReadableStream): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const ex = tar.extract();
  ex.on('entry', (h, s, next) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: unknown) => chunks.push(c as Buffer));
    s.on('end', () => {
      out.set(h.name, { name: h.name, type: h.type!, mode: h.mode!, uid: h.uid!, gid: h.gid!, ...(h.uname ? { uname: h.uname } : {}), ...(h.linkname ? { linkname: h.linkname } : {}), data: Buffer.concat(chunks) });
      next();
    });
  });
  await pipeline(stream, ex);
  return out;
}

describe('the packer relocates a prefix made under umask 027, never touching it', () => {
  let dir: string;
  let prefix: string;
  let before: string;
  const listing = (p: string) => execFileSync('sh', ['-c', 'find . -printf "%p %m %n %l\\n" | sort; find . -type f -exec sha256sum {} + | sort'], { cwd: p }).toString();

  beforeAll(async () => {
    dir = await tempDir('sifpack-reloc-');
    prefix = path.join(dir, 'home', 'researcher', 'miniforge3', 'envs', 'analysis');
    const old = process.umask(0o027);
    try {
      const sp = path.join(prefix, 'lib', 'python3.11', 'site-packages');
      await fs.mkdir(path.join(sp, 'mod'), { recursive: true });
      await fs.mkdir(path.join(sp, 'mod-1.0.dist-info'), { recursive: true });
      await fs.mkdir(path.join(prefix, 'bin'), { recursive: true });
      await fs.mkdir(path.join(prefix, 'conda-meta'), { recursive: true });
      await fs.mkdir(path.join(prefix, 'etc', 'conda', 'activate.d'), { recursive: true });
      await fs.mkdir(path.join(prefix, 'share', 'private'), { recursive: true, mode: 0o750 });
      await fs.writeFile(path.join(sp, 'mod', '__init__.py'), 'X = 1\n', { mode: 0o640 });
      const tool = `#!${prefix}/bin/python3.11\nimport mod\n`;
      await fs.writeFile(path.join(prefix, 'bin', 'tool'), tool, { mode: 0o750 });
      const h = createHash('sha256').update(tool).digest('base64url');
      await fs.writeFile(path.join(sp, 'mod-1.0.dist-info', 'RECORD'), `mod/__init__.py,sha256=x,6\n../../../bin/tool,sha256=${h},${tool.length}\nmod-1.0.dist-info/RECORD,,\n`);
      await fs.writeFile(path.join(sp, 'inside.pth'), `${prefix}/extra\n`);
      await fs.writeFile(path.join(prefix, 'etc', 'conda', 'activate.d', 'x.sh'), `export X_DATA=${prefix}/share/x\n`);
      // conda records this one as binary with a placeholder; its C string is padded.
      await fs.writeFile(path.join(prefix, 'share', 'private', 'data.bin'), Buffer.concat([B('\0\x01'), B(`${prefix}/share\0`), B('tail')]));
      await fs.writeFile(path.join(prefix, 'conda-meta', 'x-1-0.json'), JSON.stringify({ name: 'x', version: '1', build: '0', paths_data: { paths: [{ _path: 'share/private/data.bin', file_mode: 'binary', prefix_placeholder: '/opt/placeholder' }] } }));
      await fs.symlink('tool', path.join(prefix, 'bin', 'tool-rel'));
      await fs.symlink(`${prefix}/bin/tool`, path.join(prefix, 'bin', 'tool-abs'));
      await fs.symlink('/usr/bin/env', path.join(prefix, 'bin', 'outside'));
      await fs.link(path.join(prefix, 'bin', 'tool'), path.join(prefix, 'bin', 'tool-hard'));
      await fs.writeFile(path.join(prefix, 'left-out.txt'), 'skip me');
    } finally {
      process.umask(old);
    }
    before = listing(prefix);
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const transform = (): PrefixTransform => ({ from: prefix, to: NEW, fileModes: new Map([['share/private/data.bin', 'binary']]), skip: new Set(['left-out.txt']), report: emptyRelocationReport() });

  it('content, links, modes and owners in the tar; the RECORD follows the rewritten script; the host prefix is unchanged', async () => {
    const t = transform();
    const e = await readTar(packContext([], [{ name: 'prefix', source: prefix, prefix: t }]));
    const tool = `#!${NEW}/bin/python3.11\nimport mod\n`;
    expect(e.get('prefix/bin/tool')!.data.toString()).toBe(tool);
    expect(e.get('prefix/bin/tool')!.mode.toString(8)).toBe('755');
    expect(e.get('prefix/bin/tool-hard')).toMatchObject({ type: 'link', linkname: 'prefix/bin/tool' });
    expect(e.get('prefix/bin/tool-rel')).toMatchObject({ type: 'symlink', linkname: 'tool' });
    expect(e.get('prefix/bin/tool-abs')).toMatchObject({ type: 'symlink', linkname: `${NEW}/bin/tool` });
    expect(e.get('prefix/bin/outside')).toMatchObject({ type: 'symlink', linkname: '/usr/bin/env' });
    expect(e.get('prefix/lib/python3.11/site-packages/mod/__init__.py')!.mode.toString(8)).toBe('644');
    expect(e.get('prefix/share/private')).toMatchObject({ type: 'directory', mode: 0o755 });
    const bin = e.get('prefix/share/private/data.bin')!.data;
    expect(bin.toString('latin1')).toBe(`\0\x01${NEW}/share${'\0'.repeat(prefix.length - NEW.length)}\0tail`);
    const record = e.get('prefix/lib/python3.11/site-packages/mod-1.0.dist-info/RECORD')!.data.toString();
    expect(record).toContain(`../../../bin/tool,sha256=${createHash('sha256').update(tool).digest('base64url')},${tool.length}\n`);
    expect(e.get('prefix/lib/python3.11/site-packages/inside.pth')!.data.toString()).toBe(`${NEW}/extra\n`);
    expect(e.get('prefix/etc/conda/activate.d/x.sh')!.data.toString()).toBe(`export X_DATA=${NEW}/share/x\n`);
    expect(e.has('prefix/left-out.txt')).toBe(false);
    for (const x of e.values()) {
      expect(x, x.name).toMatchObject({ uid: 0, gid: 0, uname: 'root' });
      expect(x.data.indexOf(B(prefix)), x.name).toBe(-1);
      expect(x.linkname ?? '', x.name).not.toContain(prefix);
    }
    expect(t.report).toMatchObject({ text: 3, binary: 1, pyc: 0, links: 1, records: 1, dropped: [], opaque: [], scrubbed: [] });
    expect(listing(prefix)).toBe(before);
  });

  it('GNU tar unpacks it with --no-same-owner: one inode for the hard link, links intact, a+rX', async () => {
    const t = transform();
    const archive = path.join(dir, 'env.tar');
    await pipeline(packContext([], [{ name: '.', source: prefix, prefix: t }]), createWriteStream(archive));
    const out = path.join(dir, 'unpacked');
    await fs.mkdir(out);
    execFileSync('tar', ['-xf', archive, '-C', out, '--no-same-owner']);
    const st = await fs.stat(path.join(out, 'bin', 'tool'));
    expect(st.nlink).toBe(2);
    expect((await fs.stat(path.join(out, 'bin', 'tool-hard'))).ino).toBe(st.ino);
    expect(await fs.readlink(path.join(out, 'bin', 'tool-abs'))).toBe(`${NEW}/bin/tool`);
    expect(((await fs.stat(path.join(out, 'share', 'private'))).mode & 0o777).toString(8)).toBe('755');
    // grep exits 1 when nothing matches: no file of the unpacked env names the old prefix.
    expect(execFileSync('sh', ['-c', 'grep -rlF "$1" "$2" || true', 'sh', prefix, out], { encoding: 'utf8' })).toBe('');
  });
});

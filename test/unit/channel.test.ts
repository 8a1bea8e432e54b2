import { describe, expect, it } from 'vitest';
import { channelName, stripCredentials } from '../../src/model/channel.js';

describe('stripCredentials', () => {
  it('removes an anaconda.org token segment', () => {
    expect(stripCredentials('https://conda.anaconda.org/t/tk-123abc/labtools/noarch/x.conda')).toEqual({ url: 'https://conda.anaconda.org/labtools/noarch/x.conda', hadCredentials: true });
  });
  it('removes user:password from the authority', () => {
    expect(stripCredentials('https://alice:s3cret@conda.example.org/main')).toEqual({ url: 'https://conda.example.org/main', hadCredentials: true });
  });
  it('keeps a token written as an environment variable (no secret in it)', () => {
    expect(stripCredentials('https://localhost/t/${CONDA_TOKEN}/stable')).toEqual({ url: 'https://localhost/t/${CONDA_TOKEN}/stable', hadCredentials: false });
  });
  it('leaves a plain URL alone', () => {
    expect(stripCredentials('https://conda.anaconda.org/conda-forge')).toEqual({ url: 'https://conda.anaconda.org/conda-forge', hadCredentials: false });
  });
});

describe('channelName', () => {
  it.each([
    ['https://conda.anaconda.org/conda-forge/noarch', 'conda-forge'],
    ['https://conda.anaconda.org/conda-forge/linux-64', 'conda-forge'],
    ['https://conda.anaconda.org/t/tk-1/labtools/noarch', 'labtools'],
    ['https://repo.anaconda.com/pkgs/main/osx-64', 'defaults'],
    ['https://repo.continuum.io/pkgs/free/linux-64', 'defaults'],
    ['pkgs/main', 'defaults'],
    ['conda-forge', 'conda-forge'],
    ['https://mirror.example.org/conda/bioconda/linux-64', 'https://mirror.example.org/conda/bioconda'],
    ['https://user:pw@mirror.example.org/conda/bioconda/linux-64', 'https://mirror.example.org/conda/bioconda'],
  ])('%s → %s', (input, expected) => {
    expect(channelName(input)).toBe(expected);
  });
});

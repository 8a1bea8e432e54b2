/**
 * Distribution name → the module `import` needs, for %test. `null` marks
 * packages with nothing to import (interpreters, C libraries, meta-packages).
 * Conda packages not listed are not imported (they may well be C libraries);
 * pip packages not listed are tried under their normalised name, a guess, so
 * a miss is reported but does not fail `apptainer test` (or the build).
 */
const IMPORTS: Record<string, string | null> = {
  'scikit-learn': 'sklearn', sklearn: 'sklearn', 'scikit-image': 'skimage', pyyaml: 'yaml', pillow: 'PIL', opencv: 'cv2',
  'opencv-python': 'cv2', 'opencv-python-headless': 'cv2', 'opencv-contrib-python': 'cv2', 'py-opencv': 'cv2',
  beautifulsoup4: 'bs4', 'python-dateutil': 'dateutil', pytorch: 'torch', torch: 'torch', torchvision: 'torchvision',
  torchaudio: 'torchaudio', tensorflow: 'tensorflow', 'tensorflow-gpu': 'tensorflow', 'tensorflow-cpu': 'tensorflow',
  'msgpack-python': 'msgpack', pyzmq: 'zmq', attrs: 'attr', protobuf: 'google.protobuf', pytables: 'tables', tables: 'tables',
  biopython: 'Bio', netcdf4: 'netCDF4', 'py-xgboost': 'xgboost', xgboost: 'xgboost', lightgbm: 'lightgbm', pyopenssl: 'OpenSSL',
  ipython: 'IPython', 'matplotlib-base': 'matplotlib', matplotlib: 'matplotlib', numpy: 'numpy', pandas: 'pandas', scipy: 'scipy',
  seaborn: 'seaborn', statsmodels: 'statsmodels', xarray: 'xarray', dask: 'dask', 'dask-core': 'dask', numba: 'numba',
  pyarrow: 'pyarrow', polars: 'polars', sympy: 'sympy', networkx: 'networkx', h5py: 'h5py', tqdm: 'tqdm', requests: 'requests',
  jax: 'jax', jaxlib: 'jaxlib', cupy: 'cupy', 'cupy-core': 'cupy', numexpr: 'numexpr', bottleneck: 'bottleneck', joblib: 'joblib',
  click: 'click', rich: 'rich', pydantic: 'pydantic', transformers: 'transformers', datasets: 'datasets', accelerate: 'accelerate',
  'lightning': 'lightning', 'pytorch-lightning': 'pytorch_lightning', mpi4py: 'mpi4py', zarr: 'zarr', netcdf: null, gdal: 'osgeo',
  'python-dotenv': 'dotenv', 'typing-extensions': 'typing_extensions', typing_extensions: 'typing_extensions', six: 'six',
  snakemake: 'snakemake', 'snakemake-minimal': 'snakemake', pysam: 'pysam', anndata: 'anndata', scanpy: 'scanpy',
  plotly: 'plotly', bokeh: 'bokeh', altair: 'altair', sqlalchemy: 'sqlalchemy', psycopg2: 'psycopg2', 'psycopg2-binary': 'psycopg2',
  // nothing to import
  python: null, pip: null, setuptools: null, wheel: null, python_abi: null, 'pytorch-cuda': null, 'cuda-version': null,
  cudatoolkit: null, cudnn: null, nccl: null, mkl: null, openblas: null, blas: null, 'ca-certificates': null, openssl: null,
  tzdata: null, ncurses: null, readline: null, sqlite: null, tk: null, xz: null, zlib: null, bzip2: null, nodejs: null,
  git: null, make: null, cmake: null, compilers: null, 'c-compiler': null, 'cxx-compiler': null, 'fortran-compiler': null,
  r: null, 'r-base': null, ffmpeg: null, samtools: null, jupyterlab: null, notebook: null, 'jupyter': null, ipykernel: 'ipykernel',
};

/** PEP 503 normalisation: `Foo.Bar_baz` → `foo-bar-baz`. */
export function normaliseDist(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/**
 * The module to import for a distribution: a string, `null` when there is
 * nothing to import, or `undefined` when unknown.
 */
export function importName(dist: string): string | null | undefined {
  const n = normaliseDist(dist);
  if (n in IMPORTS) return IMPORTS[n];
  if (dist in IMPORTS) return IMPORTS[dist];
  if (/^(lib|_)|^cuda-|-cuda$|^r-|^font|^xorg-|^perl-/.test(n)) return null;
  return undefined;
}

/** The usual import name of a pip distribution not in the table: a guess. */
export function guessedImport(dist: string): string {
  return normaliseDist(dist).replace(/-/g, '_');
}

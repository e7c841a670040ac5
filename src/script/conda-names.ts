/**
 * Conda package names and the PyPI packages they are. A conda environment file's `dependencies` are conda
 * packages; a scoring script's environment is built with pip, so each must be named as PyPI names it.
 * Two tables, both short and documented (docs/coming-from-azure-ml-v1.md): the names that are the same
 * package on PyPI, and the known renames. Anything else is reported at validate, all at once, with what to
 * do (move it to the file's `pip:` list under its PyPI name, or drop it: conda's system libraries such
 * as `cudatoolkit` or `mkl` come inside PyPI's wheels).
 */

/** Conda names that are the same package under the same name on PyPI. */
export const SAME_ON_PYPI: ReadonlySet<string> = new Set([
  'numpy',
  'scipy',
  'pandas',
  'pillow',
  'ujson',
  'orjson',
  'scikit-learn',
  'scikit-image',
  'requests',
  'flask',
  'matplotlib',
  'onnx',
  'onnxruntime',
  'onnxruntime-gpu',
  'protobuf',
  'h5py',
  'joblib',
  'keras',
  'tensorflow',
  'tensorflow-hub',
  'torchvision',
  'torchaudio',
  'transformers',
  'tokenizers',
  'xgboost',
  'lightgbm',
  'catboost',
  'pyyaml',
  'six',
  'tqdm',
  'opencv-python',
  'opencv-python-headless',
  'imageio',
  'nltk',
  'spacy',
  'gensim',
  'statsmodels',
  'sympy',
  'networkx',
  'azureml-core',
  'azureml-defaults',
  'azureml-inference-server-http',
  'inference-schema',
]);

/** Conda names whose PyPI package has another name. */
export const CONDA_RENAMES: Readonly<Record<string, string>> = {
  'tensorflow-gpu': 'tensorflow',
  'tensorflow-cpu': 'tensorflow',
  'tensorflow-mkl': 'tensorflow',
  pytorch: 'torch',
  'pytorch-cpu': 'torch',
  'pytorch-gpu': 'torch',
  'py-opencv': 'opencv-python-headless',
  opencv: 'opencv-python-headless',
  'py-xgboost': 'xgboost',
  'py-xgboost-gpu': 'xgboost',
  'py-lightgbm': 'lightgbm',
  'pytorch-lightning': 'lightning',
  msgpack: 'msgpack',
  'msgpack-python': 'msgpack',
  'py-cpuinfo': 'py-cpuinfo',
};

/** Packages conda keeps that pip installs by itself or that the venv brings: skipped, not reported. */
export const IMPLIED: ReadonlySet<string> = new Set(['pip', 'setuptools', 'wheel']);

/** The PyPI name of a conda package, or undefined when neither table knows it. */
export function pypiNameOf(condaName: string): string | undefined {
  const name = condaName.toLowerCase();
  if (Object.hasOwn(CONDA_RENAMES, name)) return CONDA_RENAMES[name];
  return SAME_ON_PYPI.has(name) ? name : undefined;
}

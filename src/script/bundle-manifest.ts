/**
 * What a script bundle says about itself (`script.json` at its root), written by the image step and read by
 * the replica's front: where the app and the model are inside the bundle, and the environment to run it.
 */
export const SCRIPT_MANIFEST = 'script.json';

export interface ScriptManifest {
  /** The app folder (AML_APP_ROOT), relative to the bundle. */
  app: string;
  /** AZUREML_ENTRY_SCRIPT: the entry script relative to the app folder. */
  entryScript: string;
  /** AZUREML_MODEL_DIR relative to the app folder: azureml-models/<name>/<version>. */
  modelDir: string;
  /** The environment's interpreter (absolute on the local target; in the image, its path there). */
  python: string;
  /** Pass --no-control-socket to its gunicorn; left out (an image's, built after the bundle), the front asks it. */
  noControlSocket?: boolean;
  /** The environment's hash. */
  environment: string;
}

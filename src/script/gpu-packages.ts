/**
 * Which of an environment's requirements use a GPU: what `--gpu` on aks checks, to warn about a CPU-only
 * environment on a CUDA image. From PyPI on Linux: onnxruntime-gpu, torch (its Linux wheels carry CUDA),
 * tensorflow (2.x on Linux, with CUDA libraries found), jax with a CUDA extra, cupy and NVIDIA's own CUDA
 * wheels. CPU-only looks like: onnxruntime, tensorflow-cpu, a `+cpu` torch.
 */
export function gpuRequirements(requirements: readonly string[]): string[] {
  return requirements.filter((r) => {
    const spec = r.toLowerCase().trim();
    if (/\+cpu\b/.test(spec)) return false;
    const name = /^[a-z0-9][a-z0-9._-]*/.exec(spec)?.[0].replace(/[._]/g, '-') ?? '';
    return (
      ['onnxruntime-gpu', 'torch', 'tensorflow', 'tensorflow-gpu', 'tf-nightly', 'paddlepaddle-gpu'].includes(name) ||
      /^(cupy-cuda|nvidia-|mxnet-cu)/.test(name) ||
      (name === 'jax' && /\[[^\]]*cuda/.test(spec))
    );
  });
}

#!/usr/bin/env bash
# N sweep workers on one PostgreSQL study, as a Slurm job array: sbatch --array=0-2 slurm-job-array.sh
# Each array task is one worker process; it takes the study's next trial until the study is finished. A task that is
# killed or preempted loses its lease and its trial goes back to the queue (--requeue starts the task again).
# SLURM_ARRAY_TASK_ID (0 … N-1) is the index to choose a device by, one device per worker.
#SBATCH --job-name=ml-cnn-sweep
#SBATCH --array=0-2
#SBATCH --cpus-per-task=4
#SBATCH --mem=4G
#SBATCH --time=04:00:00
#SBATCH --requeue
set -euo pipefail
: "${ML_CNN_STORAGE:?export ML_CNN_STORAGE='Host=…;Username=…;Password=…;Database=…' before sbatch}"
# The sample published once to shared storage: dotnet publish samples/Sweep -c Release -o "$HOME/ml-cnn-sweep"
exec dotnet "$HOME/ml-cnn-sweep/Ml.Cnn.Samples.Sweep.dll" worker --study fashion-cnn --objective cnn \
  --storage "$ML_CNN_STORAGE" --trials 48 --threads "$SLURM_CPUS_PER_TASK" --data "$HOME/data/fashion-mnist" --out "${TMPDIR:-/tmp}/sweep"

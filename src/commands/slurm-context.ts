/** The Slurm client as commands build it from settings. */
import type { Settings } from '../config/settings.js';
import { SlurmCli } from '../runtime/slurm.js';
import type { CliContext } from './context.js';

export function slurmFor(settings: Settings, ctx: CliContext): SlurmCli {
  return new SlurmCli(ctx.runner, { sbatch: settings.sbatchPath, sacct: settings.sacctPath, scontrol: settings.scontrolPath, scancel: settings.scancelPath }, ctx.env);
}

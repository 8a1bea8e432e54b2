/** The Slurm client as commands build it from settings. */
import { type Settings, settingSpec } from '../config/settings.js';
import { SlurmCli } from '../runtime/slurm.js';
import type { CliContext } from './context.js';

/** The settings that name the Slurm commands `status` and `logs` ask. */
export const SLURM_QUERY_COMMANDS = ['scontrol-path', 'sacct-path'] as const;

const tableDefault = (key: string): string => settingSpec(key)!.default as string;

/** A command passes the command settings it takes; the others keep the table's defaults. */
export function slurmFor(settings: Partial<Pick<Settings, 'sbatchPath' | 'sacctPath' | 'scontrolPath'>>, ctx: CliContext): SlurmCli {
  return new SlurmCli(
    ctx.runner,
    {
      sbatch: settings.sbatchPath ?? tableDefault('sbatch-path'),
      sacct: settings.sacctPath ?? tableDefault('sacct-path'),
      scontrol: settings.scontrolPath ?? tableDefault('scontrol-path'),
    },
    ctx.env,
  );
}

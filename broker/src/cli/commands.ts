/**
 * Every `lnc` command. To add one: import it here and append it to the array (one line each).
 * Names may contain spaces for sub-commands ('groups list'); see command.ts for the contract.
 */
import type { AnyCommand } from './command.ts';
import { exportTopicCommand, importTopicCommand } from './offline/export-import.ts';
import { inspectIndexCommand, rebuildIndexCommand } from './offline/index-commands.ts';
import { repairCommand } from './offline/repair.ts';
import { scanCommand } from './offline/scan.ts';
import { verifyDataCommand } from './offline/verify-data.ts';
import { versionCommand } from './version.ts';
import { clusterStatusCommand } from './online/cluster-status.ts';
import { fenceCommand, membersCommand, transferLeaderCommand, unfenceCommand } from './online/cluster-admin.ts';
import { membersAddCommand, membersListCommand, membersRemoveCommand } from './online/members.ts';
import { exportQuarantineCommand } from './offline/export-quarantine.ts';
import { consumeCommand } from './online/consume.ts';
import { createTopicCommand } from './online/create-topic.ts';
import { deleteTopicCommand } from './online/delete-topic.ts';
import { listTopicsCommand } from './online/list-topics.ts';
import { groupsDescribeCommand, groupsListCommand, groupsResetOffsetsCommand } from './online/groups.ts';
import { produceCommand } from './online/produce.ts';
import { restoreCommand } from './offline/restore.ts';
import { backupsListCommand } from './offline/backups.ts';

export const commands: AnyCommand[] = [
  versionCommand,
  scanCommand,
  verifyDataCommand,
  repairCommand,
  rebuildIndexCommand,
  inspectIndexCommand,
  exportTopicCommand,
  importTopicCommand,
  listTopicsCommand,
  groupsListCommand,
  groupsDescribeCommand,
  groupsResetOffsetsCommand,
  createTopicCommand,
  deleteTopicCommand,
  produceCommand,
  consumeCommand,
  clusterStatusCommand,
  membersCommand,
  membersListCommand,
  membersAddCommand,
  membersRemoveCommand,
  transferLeaderCommand,
  fenceCommand,
  unfenceCommand,
  exportQuarantineCommand,
  restoreCommand,
  backupsListCommand,
];

import { FuseV1Options, FuseVersion } from '@electron/fuses';

/**
 * Electron fuses flipped in the packaged binary (forge.config.ts): it cannot be run as plain Node, takes no
 * NODE_OPTIONS or --inspect, loads the app only from its asar and checks that asar's integrity, and encrypts
 * its cookies. The engine runs in a utilityProcess, which needs none of what is switched off.
 */
export const fuses = {
  version: FuseVersion.V1,
  [FuseV1Options.RunAsNode]: false,
  [FuseV1Options.EnableNodeOptionsEnvironmentVariable]: false,
  [FuseV1Options.EnableNodeCliInspectArguments]: false,
  [FuseV1Options.EnableEmbeddedAsarIntegrityValidation]: true,
  [FuseV1Options.OnlyLoadAppFromAsar]: true,
  [FuseV1Options.EnableCookieEncryption]: true,
  // the app is served from app://, never file://
  [FuseV1Options.GrantFileProtocolExtraPrivileges]: false,
} as const;

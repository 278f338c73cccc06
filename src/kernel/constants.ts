// Numbers of the NETLINK_AUDIT ABI (include/uapi/linux/audit.h, linux/netlink.h) and of the contid patch set.

export const NETLINK_AUDIT = 9;
export const AUDIT_NLGRP_READLOG = 1;

// netlink header
export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;

/** Message types (requests 1000-1099, daemon-internal 1200-1299, kernel records 1300+). */
export const MsgType = {
  GET: 1000,
  SET: 1001,
  USER: 1005,
  LOGIN: 1006,
  SIGNAL_INFO: 1010,
  ADD_RULE: 1011,
  DEL_RULE: 1012,
  LIST_RULES: 1013,
  TRIM: 1014,
  MAKE_EQUIV: 1015,
  TTY_GET: 1016,
  TTY_SET: 1017,
  SET_FEATURE: 1018,
  GET_FEATURE: 1019,
  // contid patch set (v7..v11); never merged
  CONTAINER_OP: 1020,
  SIGNAL_INFO2: 1021,
  SET_CAPCONTID: 1022,
  FIRST_USER_MSG: 1100,
  USER_AVC: 1107,
  LAST_USER_MSG: 1199,
  DAEMON_START: 1200,
  DAEMON_END: 1201,
  DAEMON_ABORT: 1202,
  DAEMON_CONFIG: 1203,
  DAEMON_RECONFIG: 1204,
  DAEMON_ROTATE: 1205,
  DAEMON_RESUME: 1206,
  DAEMON_ACCEPT: 1207,
  DAEMON_CLOSE: 1208,
  DAEMON_ERR: 1209,
  SYSCALL: 1300,
  PATH: 1302,
  IPC: 1303,
  SOCKETCALL: 1304,
  CONFIG_CHANGE: 1305,
  SOCKADDR: 1306,
  CWD: 1307,
  EXECVE: 1309,
  OBJ_PID: 1318,
  EOE: 1320,
  NETFILTER_PKT: 1324,
  PROCTITLE: 1327,
  FEATURE_CHANGE: 1328,
  REPLACE: 1329,
  EVENT_LISTENER: 1335,
  /** Mainline: URINGOP. With the contid patch set (v10/v11): CONTAINER_ID. */
  URINGOP: 1336,
  FIRST_AVC: 1400,
  KERNEL: 2000,
  FIRST_USER_MSG2: 2100,
  LAST_USER_MSG2: 2999,
} as const;

/** The contid patch set's CONTAINER_ID record type; collides with mainline URINGOP. */
export const CONTID_CONTAINER_ID = 1336;
/**
 * The type auditmux gives the CONTAINER_ID records it writes itself on mainline kernels, where 1336 means URINGOP:
 * outside the kernel's u16 range in use, and written to logs by name (CONTAINER_ID), never by number.
 */
export const AUDITMUX_CONTAINER_ID = 0xfffe;

/** audit_status.mask bits */
export const StatusMask = {
  ENABLED: 0x1,
  FAILURE: 0x2,
  PID: 0x4,
  RATE_LIMIT: 0x8,
  BACKLOG_LIMIT: 0x10,
  BACKLOG_WAIT_TIME: 0x20,
  LOST: 0x40,
  BACKLOG_WAIT_TIME_ACTUAL: 0x80,
} as const;

/** audit_status.feature_bitmap bits */
export const FeatureBit = {
  BACKLOG_LIMIT: 0x1,
  BACKLOG_WAIT_TIME: 0x2,
  EXECUTABLE_PATH: 0x4,
  EXCLUDE_EXTEND: 0x8,
  SESSIONID_FILTER: 0x10,
  LOST_RESET: 0x20,
  FILTER_FS: 0x40,
  /** contid patch set only */
  CONTAINERID: 0x80,
} as const;

/** AUDIT_SET_FEATURE feature numbers */
export const Feature = {
  ONLY_UNSET_LOGINUID: 0,
  LOGINUID_IMMUTABLE: 1,
} as const;
export const AUDIT_FEATURE_VERSION = 1;

export const Failure = { SILENT: 0, PRINTK: 1, PANIC: 2 } as const;

/** Rule filter lists (rule flags). */
export const FilterList = {
  user: 0,
  task: 1,
  entry: 2,
  watch: 3,
  exit: 4,
  exclude: 5,
  filesystem: 6,
  io_uring: 7,
} as const;
export type FilterListName = keyof typeof FilterList;
export const AUDIT_FILTER_PREPEND = 0x10;
export const AUDIT_NR_FILTERS = 8;

export const RuleAction = { never: 0, possible: 1, always: 2 } as const;
export type RuleActionName = keyof typeof RuleAction;

export const AUDIT_MAX_FIELDS = 64;
export const AUDIT_BITMASK_SIZE = 64;
export const AUDIT_MAX_KEY_LEN = 256;
export const AUDIT_KEY_SEPARATOR = 0x01;
export const PATH_MAX = 4096;

/** Operators in fieldflags. */
export const Op = {
  BIT_MASK: 0x08000000,
  LESS_THAN: 0x10000000,
  GREATER_THAN: 0x20000000,
  NOT_EQUAL: 0x30000000,
  EQUAL: 0x40000000,
  BIT_TEST: 0x48000000,
  LESS_THAN_OR_EQUAL: 0x50000000,
  GREATER_THAN_OR_EQUAL: 0x60000000,
} as const;
export const AUDIT_OPERATORS = 0x78000000;
export const AUDIT_NEGATE = 0x80000000;

/** Rule field numbers. */
export const Field = {
  pid: 0,
  uid: 1,
  euid: 2,
  suid: 3,
  fsuid: 4,
  gid: 5,
  egid: 6,
  sgid: 7,
  fsgid: 8,
  auid: 9, // AUDIT_LOGINUID
  pers: 10,
  arch: 11,
  msgtype: 12,
  subj_user: 13,
  subj_role: 14,
  subj_type: 15,
  subj_sen: 16,
  subj_clr: 17,
  ppid: 18,
  obj_user: 19,
  obj_role: 20,
  obj_type: 21,
  obj_lev_low: 22,
  obj_lev_high: 23,
  loginuid_set: 24,
  sessionid: 25,
  fstype: 26,
  /** contid patch set only */
  contid: 27,
  devmajor: 100,
  devminor: 101,
  inode: 102,
  exit: 103,
  success: 104,
  watch: 105,
  perm: 106,
  dir: 107,
  filetype: 108,
  obj_uid: 109,
  obj_gid: 110,
  field_compare: 111,
  exe: 112,
  saddr_fam: 113,
  a0: 200,
  a1: 201,
  a2: 202,
  a3: 203,
  key: 210, // AUDIT_FILTERKEY
} as const;
export type FieldName = keyof typeof Field;

export const Perm = { exec: 1, write: 2, read: 4, attr: 8 } as const;

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;

/** Sizes of the wire structs. */
export const AUDIT_STATUS_SIZE = 44;
export const AUDIT_RULE_DATA_SIZE = 1040;
export const AUDIT_FEATURES_SIZE = 16;

/** (u64)-1: the unset contid and the unset auid/sessionid in 32 bits. */
export const AUDIT_CID_UNSET = 0xffffffffffffffffn;
export const AUDIT_UID_UNSET = 0xffffffff;
/** The kernel's AUDIT_SID_UNSET ((unsigned int)-1): a session id never set, as `-F sessionid=unset` asks for. */
export const AUDIT_SID_UNSET = 0xffffffff;

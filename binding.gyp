{
  "targets": [
    {
      "target_name": "auditmux_netlink",
      "sources": ["native/audit_netlink.cc", "native/log_sync.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": [
        "-std=c++17", "-O2", "-Wall", "-Wextra",
        "-fstack-protector-strong", "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=2", "-fstack-clash-protection",
        "-Wformat", "-Werror=format-security", "-frecord-gcc-switches"
      ],
      "ldflags": ["-Wl,-z,relro", "-Wl,-z,now", "-Wl,-z,noexecstack"]
    }
  ]
}

{
  "targets": [
    {
      "target_name": "batch_socket",
      "sources": ["native/batch_socket.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources!": ["native/batch_socket.c"]}]]
    }
  ]
}

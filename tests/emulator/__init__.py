"""Contract tests of the UploadFile emulator (``bulkup.emulator``), over real TCP on loopback."""

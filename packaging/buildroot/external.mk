include $(sort $(wildcard $(BR2_EXTERNAL_MIPC_PATH)/*/*.mk))

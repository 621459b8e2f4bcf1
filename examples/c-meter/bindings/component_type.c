/* wit-bindgen's C bindings call for the object file holding the world's
 * types (`bindings_component_type.o`); ./build.sh embeds those types from
 * wit/ with `jco embed` instead, so this empty function stands in for the
 * object's symbol. Keep it when you generate bindings/ again. */
void __component_type_object_force_link_bindings(void) {}
